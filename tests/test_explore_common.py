"""Checks every registered explorer must pass, whatever it shows (STYLE 4).

Per-explorer test files then hold only their mathematics and what their panels plot.

- compute() leaves the caller's random generators as they were (STYLE 5). A reader who seeds a notebook and then moves an explorer must get the same numbers afterwards
as without it. Reseeding inside ``fork_rng(devices=[])`` restores the CPU generator but, through
``torch.manual_seed``, reseeds every CUDA generator: on a CPU-only machine the only trace of that
is the call itself, so the test watches for it too.
"""
import random

import numpy as np
import pytest
import torch

from d2lcore import explore
from d2lcore.explore import toolkit

EXPLORERS = [getattr(explore, name) for name in explore.__all__ if name != "toolkit"]
IDS = [m.__name__.rsplit(".", 1)[-1] for m in EXPLORERS]


def far_from_default(controls) -> dict:
    """Every control moved away from its default: a slider to the end farther from it, a
    choice to its last option other than the default, a toggle flipped."""
    params = {}
    for c in controls:
        if isinstance(c, toolkit.Slider):
            params[c.name] = c.max if c.max - c.default >= c.default - c.min else c.min
        elif isinstance(c, toolkit.Choice):
            params[c.name] = [o for o in c.options if o != c.default][-1]
        else:
            params[c.name] = not c.default
    return toolkit.clamp(controls, params, set())


def _states():
    states = {"torch": torch.get_rng_state(), "numpy": np.random.get_state()[1].copy(), "python": random.getstate()}
    if torch.cuda.is_available():
        states["cuda"] = torch.cuda.get_rng_state_all()
    return states


@pytest.mark.parametrize("module", EXPLORERS, ids=IDS)
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


@pytest.mark.parametrize("module", EXPLORERS, ids=IDS)
def test_a_reused_figure_draws_exactly_what_a_fresh_one_draws(module):
    # Live updates empty and reuse the axes; nothing of the previous picture may carry over.
    explorer = module.EXPLORER
    reused = toolkit.new_figure(explorer)
    toolkit.render(explorer, reused, module.compute(**far_from_default(explorer.controls)))
    result = module.compute()
    assert toolkit.render(explorer, reused, result) == toolkit.render(explorer, toolkit.new_figure(explorer), result)


@pytest.mark.parametrize("module", EXPLORERS, ids=IDS)
def test_a_value_out_of_range_names_the_control(module):
    sliders = [c for c in module.EXPLORER.controls if isinstance(c, toolkit.Slider)]
    for c in sliders:
        with pytest.raises(ValueError, match=rf"^{c.name} must be .*got"):
            module.compute(**{c.name: c.max + abs(c.max - c.min) + 1})
    choices = [c for c in module.EXPLORER.controls if isinstance(c, toolkit.Choice)]
    for c in choices:
        with pytest.raises(ValueError, match=rf"^{c.name} must be one of"):
            module.compute(**{c.name: "no such option"})


@pytest.mark.parametrize("module", EXPLORERS, ids=IDS)
def test_the_live_view_shows_what_compute_says_after_every_control_moves(module):
    view = toolkit.LiveView(module.EXPLORER)
    for name, value in far_from_default(module.EXPLORER.controls).items():
        view.set(**{name: value})
        assert view.readouts == module.readouts(module.compute(**view.params)), name
