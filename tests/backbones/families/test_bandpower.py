"""Log band power: values, validation, and a torch-free embedding path."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import numpy as np
import pytest

from eegfm.backbones.adapt import BackboneInputError, plan_input
from eegfm.backbones.build import build_extractor
from eegfm.backbones.families.bandpower import BandpowerExtractor, check_bands, resolve_kwargs
from eegfm.backbones.registry import get_spec
from eegfm.config import Backbone

SFREQ, N_TIMES = 200.0, 800
CH = ["O1", "Cz", "O2", "Fz"]
ALPHA = 2  # index of (8, 13) Hz in the registry's bands


def _extractor(ch_names=CH, n_times=N_TIMES, weights=None, **kwargs):
    spec = get_spec("bandpower")
    info = {"sfreq": SFREQ, "n_times": n_times, "ch_names": ch_names, "units": "V"}
    return build_extractor(spec, Backbone(name="bandpower", kwargs=kwargs, weights=weights), plan_input(spec, info), seed=0)


def test_shape_and_finite_values():
    X = np.random.default_rng(0).normal(scale=1e-5, size=(3, 4, N_TIMES)).astype(np.float32)
    extractor = _extractor()
    assert isinstance(extractor, BandpowerExtractor)
    E = extractor(X)
    assert E.shape == (3, 4 * 5) == (3, extractor.dim) and E.dtype == np.float32 and np.isfinite(E).all()


def test_alpha_sinusoid_power_is_recovered():
    rng = np.random.default_rng(0)
    t = np.arange(N_TIMES) / SFREQ
    X = rng.normal(scale=1e-6, size=(2, 4, N_TIMES))
    amplitude_uv = 20.0
    X[:, 0] += amplitude_uv * 1e-6 * np.sin(2 * np.pi * 10 * t)
    E = _extractor()(X.astype(np.float32)).reshape(2, 4, 5)  # channel-major
    assert (E[:, 0].argmax(axis=-1) == ALPHA).all()
    assert (E[:, 0, ALPHA] > E[:, 1:, ALPHA].max(axis=-1) + 2).all()
    # a sine of amplitude A carries A²/2 of power: 200 µV² -> log10 = 2.30
    np.testing.assert_allclose(E[:, 0, ALPHA], np.log10(amplitude_uv**2 / 2), atol=0.05)


def test_rows_do_not_depend_on_batch_and_flat_channels_stay_finite():
    X = np.random.default_rng(1).normal(scale=1e-5, size=(5, 4, N_TIMES)).astype(np.float32)
    X[:, 3] = 0.0
    extractor = _extractor()
    E = extractor(X)
    np.testing.assert_array_equal(E[2:], extractor(X[2:]))
    assert np.isfinite(E).all() and (E.reshape(5, 4, 5)[:, 3] == -20).all()


def test_band_validation():
    with pytest.raises(BackboneInputError, match="unknown kwargs"):
        resolve_kwargs(get_spec("bandpower").init_kwargs, {"band": [[1, 4]]})
    with pytest.raises(BackboneInputError, match="no weights"):
        _extractor(weights="w.safetensors")
    with pytest.raises(BackboneInputError, match="Nyquist"):
        _extractor(bands=[[30, 120]])
    kwargs = resolve_kwargs(get_spec("bandpower").init_kwargs, {"bands": [[1, 2]]})
    with pytest.raises(BackboneInputError, match="no frequency bin"):
        check_bands(kwargs, SFREQ, 50)  # 0.25 s windows: 4 Hz resolution


def test_bandpower_embedding_imports_no_torch(tmp_path):
    """Each Snakemake job is a new process: the bandpower path must stay light."""
    script = textwrap.dedent(
        f"""
        import sys
        import numpy as np
        from eegfm.windows_store import WindowsStoreWriter
        from eegfm.config import Backbone, Embedding
        from eegfm.embed import embed, open_embeddings

        w = WindowsStoreWriter({str(tmp_path / "win")!r}, {CH!r}, {SFREQ}, {N_TIMES})
        X = np.random.default_rng(0).normal(scale=1e-5, size=(6, 4, {N_TIMES})).astype("float32")
        w.append(X, [{{"subject": str(i % 2), "label": "a"}} for i in range(6)])
        w.close()
        p = embed({str(tmp_path / "win")!r}, Backbone(name="bandpower"), Embedding(batch_size=4), 0,
                  {str(tmp_path / "cache")!r}, {str(tmp_path / "p.json")!r}, "ds")
        E, _ = open_embeddings({str(tmp_path / "p.json")!r})
        assert E.shape == (6, 20) and p["forward_passes"] == 2, (E.shape, p)
        heavy = [m for m in ("torch", "braindecode") if m in sys.modules]
        assert not heavy, heavy
        """
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-3000:]
