"""The backbone registry: one :class:`BackboneSpec` per backbone, defined once.

Importing this module is cheap (no torch, no braindecode): the config
validator and the CLI read it at parse time. Building a model happens in
:mod:`eegfm.backbones.build`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from eegfm.backbones.channels import CHANNELS_1020, DOUBLE_BANANA

Pooling = Literal["cls", "mean", "flatten", "as_is", "none"]
InputNorm = Literal["none", "channel_q95", "window_minmax", "channel_zscore_clip15"]
FeatureSource = Literal["return_features", "module_output", "module_input"]
Asset = Literal["reve_positions", "steegformer_channels"]


@dataclass(frozen=True)
class BackboneSpec:
    """Everything eegfm needs to know about one backbone.

    Attributes
    ----------
    name
        Registry name used in configs and result rows.
    kind
        ``"braindecode"`` (a ``braindecode.models`` class), ``"bandpower"``
        (non-neural log band power) or ``"riemann"`` (non-neural covariance
        tangent space).
    model_class
        braindecode class name, e.g. ``"CBraMod"`` (``None`` for non-neural).
    sfreq
        Native sampling rate in Hz; windows are resampled to it. ``None``
        accepts any rate.
    n_times_multiple
        The window length in samples (at ``sfreq``) must be a multiple of this.
    n_times_fixed
        The model needs exactly this many samples (``None``: any allowed length).
    n_times_min
        The model needs at least this many samples (at ``sfreq``).
    channels
        Human-readable channel requirement, e.g. ``"any (10-20 names)"``.
    channel_vocabulary
        The channels the pretrained model was trained on, in the order its
        input expects, as canonical 10-05 names (``Fp1``, ``T7``, ``FC5``; see
        :func:`eegfm.backbones.channels.clean_name`). Recorded channels are
        mapped onto exactly these (others are dropped; missing ones follow
        ``backbones[].missing_channels``). ``None``: any channel set, passed
        through in the recording's order with cleaned-up names.
    vocabulary_subset
        With ``channel_vocabulary``: the model takes any non-empty subset of
        it (e.g. a learned embedding per channel name, as LaBraM), fed in
        vocabulary order; nothing is ever missing, unknown channels are dropped.
    bipolar_montage
        ``(anode, cathode)`` derivations the model expects, in order (e.g.
        :data:`eegfm.backbones.channels.DOUBLE_BANANA`); each is computed as
        anode - cathode from referential channels (or taken as is when a
        recorded channel is already named ``"anode-cathode"``). Exclusive
        with ``channel_vocabulary``.
    scale
        Factor from volts (the windows store's unit) to the model's input unit.
    input_norm
        Per-window normalisation applied after ``scale``, as in the model's
        pretraining code: ``"none"``, or ``"channel_q95"`` (divide each channel
        by its 95th percentile of absolute amplitude + 1e-8, as BIOT does).
    pooling
        How ``return_features`` output becomes one vector per window.
    init_kwargs
        Constructor arguments beyond the signal parameters.
    lora_targets
        Default peft ``target_modules`` for LoRA.
    pretraining_corpus
        Datasets the published weights were trained on (overlap warning).
    pretrained_source
        Where official weights live (e.g. a Hugging Face repo), for prefetch.
    offline
        ``None`` when the model builds offline, else the reason it cannot.
    key_remap
        Renames from an official (non-braindecode) checkpoint's state-dict
        keys to the braindecode model's: ``(regex, replacement)`` pairs
        applied in order with :func:`re.sub` (count 1); a ``None``
        replacement drops the key. Applied to single weights files only
        (a ``from_pretrained`` folder is braindecode's own layout).
    n_times_max
        The model takes at most this many samples (``None``: no limit).
    length_note
        What the model itself does with the samples (shown by ``eegfm
        backbones``), e.g. a patch stride that leaves the last samples unused.
    nominal_seconds
        A typical window length (s) that the model takes: the input at which
        ``eegfm backbones`` counts parameters and embedding dimensions.
    max_chans
        The model takes at most this many channels (``None``: no limit).
    needs_positions
        The model reads channel positions from ``chs_info`` (every channel
        needs one, from the windows store or MNE's template).
    scale_note
        Where ``scale`` / ``input_norm`` come from (the model's documentation
        or pretraining code), and what differs from the pretraining pipeline.
    feature_source
        How the feature tensor is read: ``"return_features"`` (braindecode's
        ``forward(x, return_features=True)``), ``"module_output"`` or
        ``"module_input"`` (a forward hook on ``feature_module``; the forward
        stops there, so a classification head after it never runs).
    feature_module
        Dotted name of the hooked submodule (e.g. ``"norm"``, ``"final_layer"``).
    forward_kwargs
        Constant keyword arguments of every forward call.
    ch_names_kwarg
        Forward keyword that receives the model channel names (LaBraM's
        ``ch_names``), or ``None``.
    pass_chs_info
        Whether ``chs_info`` is passed to the constructor (BENDR checks its
        names against a fixed order that includes a non-electrode channel).
    extra_channels
        ``(name, value)`` constant channels appended to every window after
        the model channels (BENDR's ``SCALE``); ``n_chans`` counts them.
    n_chans_model
        Channel slots the model is built with when it differs from the
        channels fed (BIOT's 18-token checkpoints read the 16 bipolar
        derivations through their first 16 tokens, as BIOT's own fine-tuning
        does); ``None`` builds it for the channels fed.
    asset
        A file the braindecode class downloads at construction, which eegfm
        supplies offline instead: ``"reve_positions"`` (REVE's position bank)
        or ``"steegformer_channels"`` (STEEGFormer's channel vocabulary).
    head_module
        The classification head (not a feature parameter; excluded from the
        parameter count of ``eegfm backbones``).
    embedding_dim
        The embedding size, when it does not depend on the input (checked
        against the built model by the tests); ``None`` when it does.
    """

    name: str
    kind: Literal["braindecode", "bandpower", "riemann"]
    model_class: str | None = None
    sfreq: float | None = None
    n_times_multiple: int = 1
    n_times_fixed: int | None = None
    n_times_min: int = 1
    channels: str = "any"
    channel_vocabulary: tuple[str, ...] | None = None
    vocabulary_subset: bool = False
    bipolar_montage: tuple[tuple[str, str], ...] | None = None
    scale: float = 1.0
    input_norm: InputNorm = "none"
    pooling: Pooling = "mean"
    init_kwargs: dict[str, Any] = field(default_factory=dict)
    lora_targets: tuple[str, ...] = ()
    pretraining_corpus: tuple[str, ...] = ()
    pretrained_source: str | None = None
    offline: str | None = None
    key_remap: tuple[tuple[str, str | None], ...] = ()
    n_times_max: int | None = None
    length_note: str = ""
    nominal_seconds: float = 4.0
    max_chans: int | None = None
    needs_positions: bool = False
    scale_note: str = ""
    feature_source: FeatureSource = "return_features"
    feature_module: str | None = None
    forward_kwargs: dict[str, Any] = field(default_factory=dict)
    ch_names_kwarg: str | None = None
    pass_chs_info: bool = True
    extra_channels: tuple[tuple[str, float], ...] = ()
    n_chans_model: int | None = None
    asset: Asset | None = None
    head_module: str = "final_layer"
    embedding_dim: int | None = None

    def accepts_n_times(self, n: int) -> bool:
        """Whether the model takes windows of ``n`` samples (at ``sfreq``)."""
        if self.n_times_fixed is not None:
            return n == self.n_times_fixed
        too_long = self.n_times_max is not None and n > self.n_times_max
        return n >= max(self.n_times_min, 1) and n % self.n_times_multiple == 0 and not too_long

    @property
    def min_n_times(self) -> int:
        """The shortest window (samples at ``sfreq``) the model takes."""
        if self.n_times_fixed is not None:
            return self.n_times_fixed
        m = self.n_times_multiple
        return -(-max(self.n_times_min, 1) // m) * m

    @property
    def nominal_n_times(self) -> int | None:
        """``nominal_seconds`` in samples at ``sfreq`` (``None`` without a native rate)."""
        return round(self.nominal_seconds * self.sfreq) if self.sfreq else None

    def length_rule(self, with_rate: bool = True) -> str:
        """The window-length constraint in samples, e.g. ``"k x 200 (1 s) at 200 Hz"``."""
        if self.n_times_fixed is not None:
            return f"= {self.n_times_fixed}"
        rate = f" at {self.sfreq:g} Hz" if self.sfreq and with_rate else ""
        parts = []
        if self.n_times_multiple > 1:
            seconds = f" ({self.n_times_multiple / self.sfreq:g} s)" if self.sfreq else ""
            parts.append(f"k x {self.n_times_multiple}{seconds}")
        if self.n_times_min > self.n_times_multiple:
            parts.append(f">= {self.n_times_min}")
        if self.n_times_max is not None:
            parts.append(f"<= {self.n_times_max}")
        return (", ".join(parts) or "any") + (rate if parts else "")


_SPECS: tuple[BackboneSpec, ...] = (
    BackboneSpec(
        name="bandpower",
        kind="bandpower",
        channels="any",
        scale=1e6,
        pooling="none",
        # Welch segments of welch_seconds (half overlap), capped at the window length.
        init_kwargs={"bands": ((1, 4), (4, 8), (8, 13), (13, 30), (30, 45)), "welch_seconds": 2.0},
    ),
    BackboneSpec(
        name="cbramod",
        kind="braindecode",
        model_class="CBraMod",
        sfreq=200.0,
        n_times_multiple=200,
        channels="any",
        scale=1e6 / 100,  # CBraMod was pretrained on µV / 100
        scale_note="µV / 100: CBraMod's TUEG preprocessing (github.com/wjq-learning/CBraMod)",
        pooling="mean",
        embedding_dim=200,
        # The encoder output: CBraMod's `proj_out` is its patch-reconstruction head
        # (d_model -> 200 samples), replaced by Identity in all of its fine-tuning code.
        feature_source="module_output",
        feature_module="encoder",
        # Peft wraps whole nn.MultiheadAttention modules (their out_proj alone gets no gradient).
        lora_targets=("self_attn_s", "self_attn_t", "linear1", "linear2"),
        pretraining_corpus=("TUEG",),
        pretrained_source="braindecode/cbramod-pretrained",
    ),
    BackboneSpec(
        name="biot",
        kind="braindecode",
        model_class="BIOT",
        sfreq=200.0,
        n_times_min=200,  # below 1 s BIOT silently changes its STFT size (n_fft)
        channels="16 longitudinal bipolar derivations (double banana) from referential 10-20 channels",
        # BIOT's README: the 16 derivations of its TUAB/TUEV/PREST data; the 18-channel
        # checkpoints add SHHS's C3-A2, C4-A1 as channel tokens 16-17, unused on EEG.
        bipolar_montage=DOUBLE_BANANA,
        scale=1e6,  # µV before the per-channel q95 normalisation of BIOT's loaders
        input_norm="channel_q95",
        scale_note="µV, then each channel / its 95th percentile of |x| (BIOT's TUAB/TUEV loaders)",
        pooling="as_is",
        embedding_dim=256,
        lora_targets=("to_q", "to_k", "to_v", "to_out"),
        pretraining_corpus=("SHHS", "PREST"),
        pretrained_source="braindecode/biot-pretrained-shhs-prest-18chs",
        n_chans_model=18,  # the registered checkpoint holds 18 channel tokens
        # The official release (github.com/ycq091044/BIOT, pretrained-models/*.ckpt) is the
        # state dict of its BIOTEncoder, loaded there into BIOTClassifier.biot: no prefix,
        # plus the frozen channel-index Parameter `index` (a non-persistent buffer in
        # braindecode). braindecode keeps the encoder under `encoder.`.
        key_remap=(
            (r"^(?:model\.)?biot\.", ""),  # BIOTClassifier / UnsupervisedPretrain (+ Lightning) wrappers
            (r"^(?:model\.)?(?:classifier|prediction)\.", None),  # their heads: never used for features
            (r"^index$", None),
            (r"^(patch_embedding|transformer|positional_encoding|channel_tokens)\.", r"encoder.\1."),
        ),
    ),
    BackboneSpec(
        name="riemann",
        kind="riemann",
        channels="any",
        scale=1e6,  # covariances in µV²
        n_times_min=2,
        pooling="none",
        # Shrinkage keeps covariances positive definite (e.g. average-referenced data is rank C-1).
        init_kwargs={"estimator": "oas"},
    ),
)


# ----------------------------------------------------------------------------- foundation models
# Channel vocabularies in canonical 10-05 spelling (eegfm.backbones.channels.clean_name of the
# braindecode 1.8.1 lists; tests/backbones/test_models.py checks them against braindecode).

#: LaBraM's 128 position-embedding names (braindecode.models.labram.LABRAM_CHANNEL_ORDER);
#: the legacy T3/T4/T5/T6 rows collapse onto T7/T8/P7/P8, hence 124.
LABRAM_VOCABULARY: tuple[str, ...] = (
    "Fp1", "Fpz", "Fp2", "AF9", "AF7", "AF5", "AF3", "AF1", "AFz", "AF2", "AF4", "AF6", "AF8", "AF10",
    "F9", "F7", "F5", "F3", "F1", "Fz", "F2", "F4", "F6", "F8", "F10", "FT9", "FT7", "FC5", "FC3", "FC1",
    "FCz", "FC2", "FC4", "FC6", "FT8", "FT10", "T9", "T7", "C5", "C3", "C1", "Cz", "C2", "C4", "C6", "T8",
    "T10", "TP9", "TP7", "CP5", "CP3", "CP1", "CPz", "CP2", "CP4", "CP6", "TP8", "TP10", "P9", "P7", "P5",
    "P3", "P1", "Pz", "P2", "P4", "P6", "P8", "P10", "PO9", "PO7", "PO5", "PO3", "PO1", "POz", "PO2", "PO4",
    "PO6", "PO8", "PO10", "O1", "Oz", "O2", "O9", "CB1", "CB2", "Iz", "O10", "M1", "M2", "A1", "A2",
    "CFC1", "CFC2", "CFC3", "CFC4", "CFC5", "CFC6", "CFC7", "CFC8", "CCP1", "CCP2", "CCP3", "CCP4", "CCP5",
    "CCP6", "CCP7", "CCP8", "T1", "T2", "FTT9h", "TTP7h", "TPP9h", "FTT10h", "TPP8h", "TPP10h",
    "Fp1-F7", "F7-T7", "T7-P7", "P7-O1", "Fp2-F8", "F8-T8", "T8-P8", "P8-O2",
)  # fmt: skip

#: EEGPT's 62 channel embeddings (braindecode.models.eegpt.EEGPT_CHANNELS).
EEGPT_VOCABULARY: tuple[str, ...] = (
    "Fp1", "Fpz", "Fp2", "AF7", "AF3", "AF4", "AF8", "F7", "F5", "F3", "F1", "Fz", "F2", "F4", "F6", "F8",
    "FT7", "FC5", "FC3", "FC1", "FCz", "FC2", "FC4", "FC6", "FT8", "T7", "C5", "C3", "C1", "Cz", "C2", "C4",
    "C6", "T8", "TP7", "CP5", "CP3", "CP1", "CPz", "CP2", "CP4", "CP6", "TP8", "P7", "P5", "P3", "P1", "Pz",
    "P2", "P4", "P6", "P8", "PO7", "PO5", "PO3", "POz", "PO4", "PO6", "PO8", "O1", "Oz", "O2",
)  # fmt: skip

#: The 62 pre-training channels of Signal-JEPA (braindecode.models.signal_jepa._PRETRAIN_CHS_INFO).
SIGNAL_JEPA_VOCABULARY: tuple[str, ...] = (
    "Fp1", "Fp2", "F7", "F3", "Fz", "F4", "F8", "FC5", "FC1", "FC2", "FC6", "T7", "C3", "Cz", "C4", "T8",
    "TP9", "CP5", "CP1", "CP2", "CP6", "TP10", "P7", "P3", "Pz", "P4", "P8", "PO9", "O1", "Oz", "O2", "PO10",
    "FC3", "FC4", "C5", "C1", "C2", "C6", "CP3", "CPz", "CP4", "P1", "P2", "POz", "FT9", "FTT9h", "TTP7h",
    "TP7", "TPP9h", "FT10", "FTT10h", "TPP8h", "TP8", "TPP10h", "F9", "F10", "AF7", "AF3", "AF4", "AF8",
    "PO3", "PO4",
)  # fmt: skip

_UNVERIFIED = "not stated in braindecode's docs; eegfm feeds µV (unverified)"


def _signal_jepa(name: str, model_class: str, *, contextual: bool, **fields: Any) -> BackboneSpec:
    """One Signal-JEPA variant: they share the pretrained conv encoder and its input conventions.

    The contextual variants also use the transformer and its channel embedding:
    'pretrain_aligned' indexes the published 62-row embedding by name (so
    braindecode/signal-jepa loads strictly) and takes any subset of those channels.
    The local variants only run the per-channel conv encoder: any channels.
    """
    channels = {"channels": "any"}
    if contextual:
        channels = {
            "channel_vocabulary": SIGNAL_JEPA_VOCABULARY,
            "vocabulary_subset": True,
            "channels": "any subset of its 62 pretraining channels (10-05 names)",
            "init_kwargs": {"channel_embedding": "pretrain_aligned"},
        }
    return BackboneSpec(
        name=name,
        kind="braindecode",
        model_class=model_class,
        sfreq=128.0,
        n_times_min=152,  # the conv encoder's receptive field (1.1875 s)
        length_note="one token per channel every 1 s (128 samples); the last (n - 152) mod 128 samples are unused",
        **channels,
        scale=1e6,
        scale_note="µV: 'rescaled by a factor of 1e6 (volts to microvolts)' (braindecode SignalJEPA docstring)",
        embedding_dim=64,
        pooling="mean",
        pretraining_corpus=("Lee2019 (OpenBMI)",),
        pretrained_source="braindecode/signal-jepa",
        nominal_seconds=4.0,
        **fields,
    )


def _classic(name: str, model_class: str, sfreq: float, n_times_min: int) -> BackboneSpec:
    """A supervised braindecode CNN used as a random-init baseline: its penultimate activations."""
    return BackboneSpec(
        name=name,
        kind="braindecode",
        model_class=model_class,
        sfreq=sfreq,
        n_times_min=n_times_min,
        channels="any",
        scale=1e6,
        scale_note="µV (trained from scratch; no pretraining convention)",
        pooling="flatten",
        feature_source="module_input",  # the input of the classifier = penultimate activations
        feature_module="final_layer",
        nominal_seconds=4.0,
    )


_FOUNDATION_SPECS: tuple[BackboneSpec, ...] = (
    BackboneSpec(
        name="labram",
        kind="braindecode",
        model_class="Labram",
        sfreq=200.0,
        n_times_multiple=200,  # 1-s patches
        channels="any subset of its 128 position embeddings (10-05 names, 8 bipolar pairs)",
        channel_vocabulary=LABRAM_VOCABULARY,
        vocabulary_subset=True,
        ch_names_kwarg="ch_names",  # selects the position embeddings; chs_info alone is not enough
        scale=1e6 / 100,
        scale_note="µV / 100 (0.1 mV units, LaBraM's dataset preparation, github.com/935963004/LaBraM)",
        pooling="mean",  # patch tokens, as LaBraM's fine-tuning (use_mean_pooling)
        embedding_dim=200,
        # qkv is computed with F.linear on qkv.weight, bypassing a peft wrapper: eegfm adapts it
        # through a weight parametrization instead (eegfm.finetune.adapters).
        lora_targets=("attn.qkv", "attn.proj", "mlp.0", "mlp.2"),
        pretraining_corpus=("TUEG", "SEED", "Siena Scalp EEG", "BCI Competition IV-1", "Grasp and Lift"),
        pretrained_source="braindecode/labram-pretrained",
    ),
    BackboneSpec(
        name="codebrain",
        kind="braindecode",
        model_class="CodeBrain",
        sfreq=200.0,
        n_times_multiple=200,  # 1-s patches; braindecode trims other lengths silently
        channels="any",
        scale=1e6 / 100,
        scale_note="µV / 100 as CBraMod, whose TUEG pipeline CodeBrain reuses (unverified)",
        pooling="mean",
        embedding_dim=200,
        lora_targets=("attention", "output_linear"),
        pretraining_corpus=("TUEG",),
        pretrained_source="braindecode/codebrain-pretrained",
    ),
    BackboneSpec(
        name="eegpt",
        kind="braindecode",
        model_class="EEGPT",
        sfreq=256.0,
        n_times_multiple=32,  # patches of 64 samples every 32
        n_times_min=64,
        channels="any subset of its 62 channel embeddings (10-10 names)",
        channel_vocabulary=EEGPT_VOCABULARY,
        vocabulary_subset=True,
        # 'none': no learned 19-channel projection, so chs_info selects the channel embeddings.
        init_kwargs={"chan_proj_type": "none"},
        scale=1e3,
        scale_note="mV (EEGPT paper's preprocessing; unverified in braindecode's docs)",
        pooling="mean",  # over patches of the 4 summary tokens (4 x 512)
        embedding_dim=2048,
        lora_targets=("attn.qkv", "attn.proj", "mlp.fc1", "mlp.fc2"),
        pretraining_corpus=("PhysioNet MI", "HGD", "TSU", "SEED", "M3CV"),
        pretrained_source="braindecode/eegpt-pretrained",
    ),
    BackboneSpec(
        name="bendr",
        kind="braindecode",
        model_class="BENDR",
        sfreq=256.0,
        n_times_min=96,  # one BENDR vector per 96 samples
        channels="the 19 10-20 channels in BENDR's order, plus its SCALE channel (set to 0)",
        channel_vocabulary=CHANNELS_1020,
        pass_chs_info=False,  # BENDR checks chs_info against its 20 names, SCALE included
        # dn3's To1020 appends SCALE; dn3 sets it to 0 when no dataset-wide range is known.
        extra_channels=(("SCALE", 0.0),),
        scale=1e6,
        input_norm="window_minmax",
        scale_note="pretraining min-max-normalised each window to [-1, 1] (dn3 MappingDeep1010)",
        pooling="as_is",  # the start-token output
        embedding_dim=512,
        lora_targets=("self_attn", "linear1", "linear2"),
        pretraining_corpus=("TUEG",),
        pretrained_source="braindecode/braindecode-bendr",
    ),
    # nn.Transformer's unused decoder also has self_attn/linear1/linear2: features.lora_target_modules
    # keeps the encoder's (the modules that run).
    _signal_jepa("signal_jepa", "SignalJEPA", contextual=True, lora_targets=("self_attn", "linear1", "linear2")),
    _signal_jepa(
        "signal_jepa_contextual",
        "SignalJEPA_Contextual",
        contextual=True,
        lora_targets=("self_attn", "linear1", "linear2"),
    ),
    _signal_jepa("signal_jepa_post_local", "SignalJEPA_PostLocal", contextual=False),  # local (conv) features only
    # A new (random) spatial filter to 4 virtual channels, then the local features.
    _signal_jepa("signal_jepa_pre_local", "SignalJEPA_PreLocal", contextual=False),
    BackboneSpec(
        name="luna",
        kind="braindecode",
        model_class="LUNA",
        sfreq=256.0,
        n_times_multiple=40,  # patches of 40 samples
        nominal_seconds=5.0,
        channels="any, with positions",
        needs_positions=True,  # channel-location embedding from chs_info
        scale=1e6,
        scale_note=_UNVERIFIED,
        pooling="mean",
        embedding_dim=256,
        feature_source="module_output",  # LUNA.forward has no return_features
        feature_module="norm",
        lora_targets=("attn.qkv_proj", "attn.proj", "mlp.fc1", "mlp.fc2"),
        pretraining_corpus=("TUEG", "Siena Scalp EEG"),
        pretrained_source="PulpBio/LUNA",
    ),
    BackboneSpec(
        name="eegdino",
        kind="braindecode",
        model_class="EEGDINO",
        sfreq=200.0,
        n_times_multiple=200,  # braindecode zero-pads other lengths
        max_chans=19,
        channels="any, at most 19 (input channel i uses embedding slot i)",
        scale=1e6 / 100,
        scale_note="µV / 100 ('pre-trained on EEG in microvolts scaled by 1/100', braindecode EEGDINO docstring)",
        pooling="mean",  # patch tokens, as EEG-DINO's fine-tuning head
        embedding_dim=200,
        # qkv is computed with F.linear on qkv.weight, bypassing a peft wrapper: eegfm adapts it
        # through a weight parametrization instead (eegfm.finetune.adapters).
        lora_targets=("attn.qkv", "attn.proj", "mlp.fc1", "mlp.fc2"),
        pretrained_source="braindecode/eegdino-small-pretrained",
    ),
    BackboneSpec(
        name="medformer",
        kind="braindecode",
        model_class="MEDFormer",
        sfreq=250.0,
        channels="any",
        scale=1e6,
        scale_note="µV (no published weights)",
        pooling="mean",
        embedding_dim=128,
        feature_source="module_output",  # MEDFormer.forward has no return_features
        feature_module="encoder",
        lora_targets=("query_projection", "key_projection", "value_projection", "out_projection"),
    ),
    BackboneSpec(
        name="mvpformer",
        kind="braindecode",
        model_class="MVPFormer",
        sfreq=512.0,
        n_times_multiple=2560,  # 5-s segments; braindecode zero-pads other lengths
        n_times_max=110 * 2560,  # max_segments
        nominal_seconds=5.0,
        max_chans=128,
        channels="any, at most 128",
        scale=1e6,
        scale_note="any: each segment is RMS-normalised inside the model (iEEG in the paper)",
        pooling="as_is",  # last segment, mean over channels
        embedding_dim=256,
        lora_targets=("q_attn", "c_attn", "c_proj", "gate_proj", "up_proj", "down_proj"),
        pretraining_corpus=("SWEC iEEG",),
    ),
    BackboneSpec(
        name="pbt",
        kind="braindecode",
        model_class="PBT",
        sfreq=250.0,
        n_times_multiple=64,  # per-channel patches of 64 samples (others straddle channels)
        nominal_seconds=4.096,
        channels="any",
        scale=1e6,
        scale_note="µV (no published weights)",
        pooling="as_is",
        embedding_dim=128,
        feature_source="module_input",  # the CLS token fed to the head; no return_features
        feature_module="final_layer",
        lora_targets=("mhsa.attn", "mhsa.proj", "proj_in", "feed_forward.proj"),
    ),
    BackboneSpec(
        name="steegformer",
        kind="braindecode",
        model_class="STEEGFormer",
        sfreq=250.0,
        n_times_multiple=16,  # patches of 16 samples; braindecode crops other lengths
        n_times_max=2047 * 16,  # the temporal encoding's table
        nominal_seconds=4.096,
        max_chans=145,  # slots of its channel embedding
        channels="any, at most 145 (pretrained weights: names in its 145-slot vocabulary file)",
        asset="steegformer_channels",
        scale=1e6,
        scale_note=_UNVERIFIED,
        pooling="mean",  # patch tokens, as its default 'avg' read-out
        embedding_dim=512,
        lora_targets=("queries", "keys", "values", "projection"),
        pretrained_source="braindecode/STEEGFormer-small",
    ),
    BackboneSpec(
        name="reve",
        kind="braindecode",
        model_class="REVE",
        sfreq=200.0,
        n_times_min=200,
        length_note="1-s patches every 0.9 s: the last (n - 200) mod 180 samples are unused",
        nominal_seconds=10.0,
        channels="any 10-05 names (positions from REVE's bank, else MNE's template)",
        asset="reve_positions",
        scale=1e6,
        input_norm="channel_zscore_clip15",
        scale_note=(
            "pretraining z-scored each channel and clipped at 15 sd (braindecode REVE docstring); eegfm "
            "z-scores per window, not per recording"
        ),
        pooling="mean",
        embedding_dim=512,
        lora_targets=("to_qkv", "to_out"),
        pretraining_corpus=("92 public datasets, 25,000 subjects (El Ouahidi et al. 2025)",),
        pretrained_source="brain-bzh/reve-base",
    ),
    BackboneSpec(
        name="zuna",
        kind="braindecode",
        model_class="ZUNA",
        sfreq=256.0,
        n_times_multiple=32,  # 32-sample tokens
        n_times_max=256 * 32,  # max_seqlen coarse-time rows
        nominal_seconds=2.0,  # ZUNA1.1 pretrained on 0.5-30 s windows; attention over 2 x channels x 8 tokens/s
        channels="any, with positions",
        needs_positions=True,  # 4D rotary positions from chs_info
        scale=1e6,
        scale_note="ZUNA's pipeline z-scores each recording and divides by a data norm; eegfm feeds µV (unverified)",
        pooling="flatten",  # per-channel latents (channels x 32), as braindecode's head reads them
        lora_targets=("wq", "wk", "wv", "wo", "w1", "w2", "w3"),
        pretraining_corpus=("~2 million channel-hours of public EEG (Warner et al. 2026)",),
        pretrained_source="braindecode/ZUNA",
    ),
)

_CLASSIC_SPECS: tuple[BackboneSpec, ...] = (
    _classic("shallow_fbcsp", "ShallowFBCSPNet", 250.0, n_times_min=99),
    _classic("eegnet", "EEGNet", 128.0, n_times_min=27),
    _classic("deep4", "Deep4Net", 250.0, n_times_min=441),  # shorter: braindecode shrinks its kernels
)

REGISTRY: dict[str, BackboneSpec] = {spec.name: spec for spec in (*_SPECS, *_FOUNDATION_SPECS, *_CLASSIC_SPECS)}


def get_spec(name: str) -> BackboneSpec:
    """The spec registered as ``name``; the error lists the registered names."""
    try:
        return REGISTRY[name]
    except KeyError:
        raise KeyError(f"unknown backbone '{name}'; registered: {', '.join(sorted(REGISTRY))}") from None
