"""Streamed training windows: read batch by batch from the store, bitwise equal to adapting the whole array."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from eegfm import streaming
from eegfm.backbones.adapt import plan_input, prepare_input
from eegfm.backbones.registry import get_spec
from eegfm.config import Backbone, Finetune
from eegfm.finetune.run import prepare_fold
from eegfm.finetune.train import Split, train
from eegfm.streaming import AdaptedWindows, ConcatWindows, epoch_batches, loader, share
from eegfm.windows_store import open_windows
from tests.finetune import conftest as finetune_fixtures

ft_data = finetune_fixtures.ft_data  # the same small real dataset


@pytest.mark.parametrize("backbone", ["eegnet", "cbramod", "biot"])
def test_a_streamed_batch_equals_the_whole_array_adapted(ft_data, backbone):
    # eegnet resamples 200 -> 128 Hz, biot normalises per channel (q95), cbramod passes through
    store = open_windows(ft_data["windows"])
    spec = get_spec(backbone)
    plan = plan_input(spec, store.info, cfg=Backbone(name=backbone))
    whole = prepare_input(np.asarray(store.X[:]), plan)
    windows = AdaptedWindows(store.X, range(store.X.shape[0]), plan)
    rng = np.random.default_rng(0)
    for batch in (rng.permutation(len(whole))[:16], [5, 5, 3], [len(whole) - 1]):
        got = windows[batch]
        assert got.dtype == torch.float32 and got.shape == (len(batch), *whole.shape[1:])
        np.testing.assert_array_equal(got.numpy(), whole[batch])
    assert windows.shape == whole.shape
    sub = windows.subset([7, 2, 9])
    np.testing.assert_array_equal(sub[[2, 0]].numpy(), whole[[9, 7]])


def test_concatenated_stores_read_in_position_order(ft_data):
    store = open_windows(ft_data["windows"])
    plan = plan_input(get_spec("cbramod"), store.info, cfg=Backbone(name="cbramod"))
    a, b = AdaptedWindows(store.X, [0, 1, 2], plan), AdaptedWindows(store.X, [10, 11], plan)
    both = ConcatWindows([a, b])
    assert len(both) == 5
    np.testing.assert_array_equal(both[[4, 0, 3]].numpy(), torch.cat([b[[1]], a[[0]], b[[0]]]).numpy())


def test_global_batches_and_rank_shares():
    g = torch.Generator().manual_seed(1)
    batches = epoch_batches(10, 4, g)
    assert sorted(sum(batches, [])) == list(range(10)) and [len(b) for b in batches] == [4, 4, 2]
    assert batches == epoch_batches(10, 4, torch.Generator().manual_seed(1))  # the seed decides the order
    for batch in batches:
        parts = [share(batch, r, 3) for r in range(3)]
        assert sum(parts, []) == batch  # contiguous shares, in order, nothing lost
        assert max(map(len, parts)) - min(map(len, parts)) <= 1


def _fold(ft_data):
    ft = Finetune(backbones=["cbramod"], optim={"max_epochs": 2, "batch_size": 16})
    f = prepare_fold(ft_data["windows"], ft_data["folds"], 0, Backbone(name="cbramod", kwargs={"n_layer": 1}), ft,
                     "full", 0, dataset="tiny")
    return ft, f


def _weights(model) -> dict[str, torch.Tensor]:
    return {n: p.detach().clone() for n, p in model.named_parameters()}


@pytest.mark.parametrize("workers", [0, 1])
def test_a_streamed_fold_trains_exactly_as_one_held_in_memory(ft_data, monkeypatch, workers):
    reads: list[int] = []
    read_rows = streaming.read_rows
    monkeypatch.setattr(streaming, "read_rows", lambda X, rows: reads.append(len(rows)) or read_rows(X, rows))
    runs = []
    for streamed in (True, False):
        ft, f = _fold(ft_data)
        ft = ft.model_copy(update={"workers": workers if streamed else 0})
        if streamed:
            tr, va = f.X.subset(f.inner_ids), f.X.subset(f.val_ids)
        else:  # the old way: every window adapted up front, held as one tensor
            tr, va = f.X[f.inner_ids], f.X[f.val_ids]
        result = train(f.model, Split(tr, f.y[f.inner_ids]), Split(va, f.y[f.val_ids]), "full", ft, 0, f.device,
                       f.dtype, unused=f.unused)
        runs.append((result, _weights(f.model)))
        if streamed:
            streamed_reads, reads[:] = list(reads), []
    (a, wa), (b, wb) = runs
    assert a.history == [{**h, "time_s": a.history[i]["time_s"]} for i, h in enumerate(b.history)]
    assert all(torch.equal(wa[n], wb[n]) for n in wa)
    if workers == 0:  # batches were read from the store one at a time, never the whole array
        assert streamed_reads and max(streamed_reads) <= 16 < len(f.inner_ids)


def test_loader_yields_batches_in_the_given_order(ft_data):
    X = torch.arange(20.0).reshape(10, 2)
    y = torch.arange(10)
    got = [(xb.tolist(), yb.tolist()) for xb, yb in loader(X, y, [[3, 1], [0]])]
    assert got == [([[6.0, 7.0], [2.0, 3.0]], [3, 1]), ([[0.0, 1.0]], [0])]
