"""The fingerprint: everything that changes a backbone's embeddings, and nothing that does not.

It is the embedding cache key (with the windows key, see
:func:`eegfm.embed.embedding_key`) and is stored with every embedding store
and fine-tuned model. It is assembled here and only here, from the spec, the
config entry, the input plan and the seed; each family contributes its own
entries (:meth:`~eegfm.backbones.family.Braindecode.record`). Device, batch
size and threads are deliberately absent. Computing it never imports torch.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from eegfm.backbones.checkpoints import weights_id
from eegfm.hashing import canonical_json
from eegfm.provenance import package_versions

if TYPE_CHECKING:  # pragma: no cover
    from eegfm.backbones.adapt import InputPlan
    from eegfm.backbones.spec import BackboneSpec
    from eegfm.config import Backbone

#: Bump when a change here or in :mod:`eegfm.embed` changes embedding values.
EMBED_CODE_VERSION = "1"

#: Libraries of the polyphase resampler, recorded when windows are resampled.
RESAMPLER = ("mne", "scipy")


def fingerprint(spec: BackboneSpec, cfg: Backbone, plan: InputPlan, seed: int) -> dict[str, Any]:
    """Everything that changes a backbone's embeddings, as JSON values.

    Parameters
    ----------
    spec
        Registry entry.
    cfg
        The config's backbone entry (weights, kwargs; its label is not included).
    plan
        The input plan from :func:`~eegfm.backbones.adapt.plan_input`.
    seed
        Seed of the random init (only enters through ``weights`` when no
        weights are given).

    Returns
    -------
    dict
        registry name, kind, model class, resolved init kwargs, weights id,
        input adaptation record, scale, pooling, embedding code version and
        library versions; for neural backbones also where features are read
        and how construction-time files were supplied (``asset``).

    Raises
    ------
    BackboneInputError, BackboneWeightsError
        When the plan, the settings or the weights do not fit the model.
    """
    family = spec.family
    libraries = list(family.libraries)
    if plan.resampled:
        libraries += [name for name in RESAMPLER if name not in libraries]
    fp = {
        "backbone": spec.name,
        "kind": spec.kind,
        "model_class": spec.model_class,
        "init_kwargs": family.init_kwargs(spec, cfg, plan),
        "weights": weights_id(cfg.weights, seed) if spec.kind == "braindecode" else "none",
        "input": plan.record(),
        "scale": plan.scale,
        "pooling": cfg.pooling or spec.pooling,
        "embed_code_version": EMBED_CODE_VERSION,
        "versions": package_versions(libraries),
        **family.record(spec, cfg),
    }
    return json.loads(canonical_json(fp))
