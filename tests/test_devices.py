"""One device resolver for embedding, fine-tuning and pretraining."""

from __future__ import annotations

import pytest
import torch

from eegfm.devices import resolve_device


def test_device_resolution_on_cpu():
    if torch.cuda.is_available():  # pragma: no cover — GPU machines
        pytest.skip("this test checks the CPU fallback; a GPU is present")
    assert resolve_device("auto", "finetune.device") in ("cpu", "mps")
    assert resolve_device("cpu", "embedding.device") == "cpu"
    with pytest.raises(RuntimeError, match="finetune.device is 'cuda' but torch sees no such device"):
        resolve_device("cuda", "finetune.device")
    with pytest.raises(RuntimeError, match=r"pretrain\.p\.device is 'cuda:1'"):
        resolve_device("cuda:1", "pretrain.p.device")


def test_every_job_resolves_devices_here():
    """Embedding, fine-tuning and pretraining name this resolver; no module keeps a second one."""
    import inspect

    import eegfm.backbones.build
    import eegfm.embed
    import eegfm.finetune.run
    import eegfm.finetune.train
    import eegfm.gpus
    import eegfm.pretrain.run

    assert eegfm.embed.resolve_device is resolve_device
    for module in (eegfm.finetune.run, eegfm.pretrain.run):
        assert "from eegfm.devices import resolve_device" in inspect.getsource(module)
    for module in (eegfm.backbones.build, eegfm.finetune.train, eegfm.gpus):
        assert not hasattr(module, "resolve_device"), module.__name__
