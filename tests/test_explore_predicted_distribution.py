"""W19 a network that predicts a distribution: honest intervals, falling NLL, mixtures that sum to 1."""
import math
import warnings

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from torch.distributions import Laplace, Normal

from d2lcore import likelihood
from d2lcore.explore import predicted_distribution as w19
from d2lcore.explore import toolkit
from explorer_strategies import control_values

PAIRS = [(data, head) for data in w19.DATASETS for head in w19.HEADS]


@settings(max_examples=40, deadline=None)
@given(control_values(w19.CONTROLS))
def test_w19_everything_is_finite_and_consistent_over_the_whole_control_range(params):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        r = w19.compute(**params)
        w19.readouts(r)
    s = r.now
    assert s.step == w19.STEPS[params["snapshot"]]
    for array in (s.mean, s.bounds, s.weights, s.comp_means, s.comp_sds, s.spread, r.nll, r.coverage90, r.coverage50):
        assert np.isfinite(array).all()
    assert s.bounds.shape == (4, len(w19.GRID)) and (np.diff(s.bounds, axis=0) >= 0).all()  # q05 <= q25 <= q75 <= q95
    assert 0 <= s.coverage50 <= s.coverage90 <= 1 and (s.spread > 0).all()
    if params["head"] == "mixture":
        np.testing.assert_allclose(s.weights.sum(axis=1), 1.0, atol=1e-12)  # the weights are a distribution
        assert (s.weights >= 0).all() and (s.comp_sds > 0).all()
        np.testing.assert_allclose(s.mean, (s.weights * s.comp_means).sum(axis=1), atol=1e-12)
    else:
        assert s.weights.shape == (0, 2)


def test_the_intervals_are_the_distributions_quantiles():
    z90, z50 = Normal(0.0, 1.0).icdf(torch.tensor(0.95)).item(), Normal(0.0, 1.0).icdf(torch.tensor(0.75)).item()
    for data in w19.DATASETS:
        s = w19.compute(data=data, head="learned σ(x)").now
        np.testing.assert_allclose(s.bounds[3] - s.mean, z90 * s.spread, rtol=1e-6)
        np.testing.assert_allclose(s.mean - s.bounds[1], z50 * s.spread, rtol=1e-6)
        lap = w19.compute(data=data, head="Laplace").now  # central p interval: b log(1 / (1 - p))
        np.testing.assert_allclose(lap.bounds[3] - lap.mean, math.log(10) * lap.spread, rtol=1e-6)
        np.testing.assert_allclose(lap.bounds[2] - lap.mean, math.log(2) * lap.spread, rtol=1e-6)
    # A mixture's bisected quantiles: its CDF there is the level, to float64 rounding.
    net = w19.network("mixture")
    with torch.no_grad():
        dist = w19.distribution("mixture", net(torch.tensor(w19.GRID, dtype=torch.float32)[:, None]).double())
    q = w19.quantiles(dist)
    np.testing.assert_allclose(dist.cdf(q).numpy(), np.broadcast_to(np.array(w19.LEVELS)[:, None], q.shape),
                               atol=1e-12)


def test_the_heads_losses_are_their_negative_log_likelihoods():
    g = toolkit.generator(5)
    out = torch.randn(50, 2, generator=g, dtype=torch.float64)
    y = torch.randn(50, 1, generator=g, dtype=torch.float64)
    mean, log_var = out[:, :1], out[:, 1:]
    gaussian = -Normal(mean, (0.5 * log_var).exp()).log_prob(y).mean()
    torch.testing.assert_close(w19.loss("learned σ(x)", out, y), gaussian, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(w19.loss("learned σ(x)", out, y),
                               likelihood.nll("mse", mean, y, sigma=(0.5 * log_var).exp()), rtol=1e-12, atol=1e-12)
    laplace = -Laplace(out[:, :1], out[:, 1:].exp()).log_prob(y).mean()
    torch.testing.assert_close(w19.loss("Laplace", out, y), laplace, rtol=1e-12, atol=1e-12)
    mix = torch.randn(50, 6, generator=g, dtype=torch.float64)
    probs = mix[:, :2].softmax(dim=1)
    density = (probs * Normal(mix[:, 2:4], mix[:, 4:6].exp()).log_prob(y).exp()).sum(dim=1)
    torch.testing.assert_close(w19.loss("mixture", mix, y), -density.log().mean(), rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(w19.loss("fixed σ", out[:, :1], y), F.mse_loss(out[:, :1], y))


def test_a_learned_sigma_gives_honest_90_percent_intervals_on_held_out_points():
    r = w19.compute(data="one branch", head="learned σ(x)")
    # 1,000 held-out points: 4 binomial standard errors, 0.038 (false alarm below 1e-4 for a
    # model whose distribution is the data's); this one's fit errs by about a percent.
    assert abs(r.coverage90[-1] - 0.9) < r.tolerance == pytest.approx(4 * math.sqrt(0.09 / 1000))
    assert abs(r.coverage50[-1] - 0.5) < 4 * math.sqrt(0.25 / 1000)
    # it has learned sigma(x): small in the middle, large at the ends, as the data's 0.05 + 0.1 x^2
    s = r.now
    middle = len(w19.GRID) // 2
    assert s.spread[middle] < 0.15 and s.spread[0] > 0.5 and s.spread[-1] > 0.5


def test_the_nll_never_increases_much_over_the_snapshots():
    for data, head in PAIRS:
        r = w19.compute(data=data, head=head)
        assert np.all(np.diff(r.nll) < 0.05), (data, head, r.nll)
        if head != "fixed σ":  # trained on its NLL; the fixed-σ head is trained on the MSE
            assert r.nll[-1] < r.nll[0], (data, head)
        assert r.nll[-1] < r.nll.min() + 0.05, (data, head)


def test_on_two_branches_the_mean_lies_where_no_observation_does_and_the_mixture_holds_both():
    _, (xh, yh) = w19.dataset("two branches")
    for head in ("fixed σ", "learned σ(x)"):  # both predict a mean (Laplace: a median)
        s = w19.compute(data="two branches", head=head).now
        centre = np.interp(xh[:, 0].numpy(), w19.GRID, s.mean)
        assert np.mean(np.abs(yh[:, 0].numpy() - centre) < 0.25) < 0.01, head
    mix = w19.compute(data="two branches", head="mixture")
    branches = np.sort(mix.now.comp_means, axis=1)
    np.testing.assert_allclose(branches[:, 1], w19.branch(w19.GRID), atol=0.15)
    np.testing.assert_allclose(branches[:, 0], -w19.branch(w19.GRID), atol=0.15)
    # the coin is fair: weights near 1/2, wandering with the 400 training points' local luck
    assert abs(mix.now.weights.mean() - 0.5) < 0.05 and np.all(np.abs(mix.now.weights - 0.5) < 0.25)
    others = [w19.compute(data="two branches", head=h).nll[-1] for h in ("fixed σ", "learned σ(x)", "Laplace")]
    assert mix.nll[-1] < min(others) - 1.5
    # a fixed sigma has the right coverage on average but not where the noise is small or large
    fixed = w19.compute(data="one branch", head="fixed σ").now
    assert abs(fixed.coverage90 - 0.9) < 0.04 and fixed.coverage50 > 0.6


def test_snapshots_are_trained_once_and_deterministically():
    first = w19.compute(head="Laplace", snapshot=3)
    assert w19.compute(head="Laplace", snapshot=3).now is first.now  # cached
    w19.snapshots.cache_clear()
    w19.dataset.cache_clear()
    again = w19.compute(head="Laplace", snapshot=3)
    np.testing.assert_allclose(again.nll, first.nll, rtol=1e-5)
    np.testing.assert_allclose(again.now.mean, first.now.mean, atol=1e-5)


def test_w19_bad_parameters_name_the_control():
    with pytest.raises(ValueError, match=r"head must be one of .*got 'Student-t'"):
        w19.compute(head="Student-t")
    with pytest.raises(ValueError, match=r"snapshot must be a number in \[0, 6\], got 7"):
        w19.compute(snapshot=7)
    with pytest.raises(ValueError, match=r"data must be one of"):
        w19.compute(data="three branches")


def test_live_view_moves_each_control_and_shows_what_compute_says():
    view = toolkit.LiveView(w19.EXPLORER)
    moves = {"snapshot": (2, 0, 6), "head": ("fixed σ", "Laplace", "mixture", "learned σ(x)"),
             "data": ("two branches", "one branch")}
    for name, values in moves.items():
        for value in values:
            before = view.image.value
            view.set(**{name: value})
            r = w19.compute(**view.params)
            assert view.params[name] == value
            assert view.readouts == w19.readouts(r)
            ax_d, ax_n, ax_c = view.figure.axes
            np.testing.assert_array_equal(ax_n.lines[0].get_ydata(), r.nll)
            assert ax_n.lines[1].get_ydata()[0] == r.now.nll
            np.testing.assert_array_equal(ax_c.lines[0].get_ydata(), r.coverage90)
            assert any(np.array_equal(line.get_ydata(), r.now.mean) for line in ax_d.lines)
            assert view.image.value != before


def test_a_reused_figure_draws_exactly_what_a_fresh_one_draws():
    reused = toolkit.new_figure(w19.EXPLORER)
    toolkit.render(w19.EXPLORER, reused, w19.compute(data="two branches", head="mixture", snapshot=1))
    r2 = w19.compute(head="fixed σ", snapshot=4)
    assert toolkit.render(w19.EXPLORER, reused, r2) == toolkit.render(w19.EXPLORER, toolkit.new_figure(w19.EXPLORER), r2)
    assert len(reused.axes) == 3


def test_w19_static_view_steps_through_the_snapshots():
    html = toolkit.static_html(w19.EXPLORER, head="mixture", data="two branches")
    assert f'data-frames="{len(w19.STEPS)}"' in html
    assert html.count("data:image/png;base64,") == len(w19.STEPS) + 1
