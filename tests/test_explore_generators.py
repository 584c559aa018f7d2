"""Every explorer's compute() leaves the caller's random generators as they were (STYLE 5).

A reader who seeds a notebook and then moves an explorer must get the same numbers afterwards
as without it. Reseeding inside ``fork_rng(devices=[])`` restores the CPU generator but, through
``torch.manual_seed``, reseeds every CUDA generator: on a CPU-only machine the only trace of that
is the call itself, so the test watches for it too.
"""
import random

import numpy as np
import pytest
import torch

from d2lcore import explore

EXPLORERS = [getattr(explore, name) for name in explore.__all__ if name != "toolkit"]


def _states():
    states = {"torch": torch.get_rng_state(), "numpy": np.random.get_state()[1].copy(), "python": random.getstate()}
    if torch.cuda.is_available():
        states["cuda"] = torch.cuda.get_rng_state_all()
    return states


@pytest.mark.parametrize("module", EXPLORERS, ids=lambda m: m.__name__.rsplit(".", 1)[-1])
def test_compute_leaves_every_global_generator_alone(module, monkeypatch):
    reseeded = []
    for name in ("manual_seed", "manual_seed_all", "seed", "seed_all"):
        monkeypatch.setattr(torch.cuda, name, lambda *a, _n=name: reseeded.append(f"torch.cuda.{_n}"))
    monkeypatch.setattr(torch.mps, "manual_seed", lambda *a: reseeded.append("torch.mps.manual_seed"), raising=False)
    torch.manual_seed(123)  # what the reader did; the patched CUDA hook records it, so forget it
    np.random.seed(123)
    random.seed(123)
    reseeded.clear()
    before = _states()
    module.compute()
    after = _states()
    assert reseeded == [], f"{module.__name__}.compute() reseeded {reseeded}: use toolkit.cpu_seeded"
    assert torch.equal(before["torch"], after["torch"])
    assert np.array_equal(before["numpy"], after["numpy"]) and before["python"] == after["python"]
    if "cuda" in before:
        assert all(torch.equal(a, b) for a, b in zip(before["cuda"], after["cuda"]))
