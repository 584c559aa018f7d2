"""W1 noise model to loss: every curve it draws is checked against torch, scipy or a closed form."""
import math
import warnings

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from scipy import stats

from d2lcore.explore import noise_to_loss as w1
from d2lcore.explore import toolkit
from explorer_strategies import control_values


def closed_form_nll(family, r, p):
    """-log p(r) written out independently of the registry (WIDGETS.md relations, scipy)."""
    s = p["scale"]
    if family == "gaussian":
        return r**2 / (2 * s**2) + math.log(s) + 0.5 * math.log(2 * math.pi)
    if family == "laplace":
        return np.abs(r) / s + math.log(2 * s)
    if family == "huber":
        d = p["delta"]
        z = math.sqrt(2 * math.pi) * math.erf(d / math.sqrt(2)) + 2 / d * math.exp(-d**2 / 2)
        rho = np.where(np.abs(r) <= d, r**2 / 2, d * (np.abs(r) - d / 2))
        return rho + math.log(z)
    return -stats.t.logpdf(r, p["df"], scale=s)


def torch_loss_per_point(family, r, p):
    """The plain torch loss with reduction='none', for comparison with the registry's."""
    t, zero = torch.tensor(r), torch.zeros(len(r), dtype=torch.float64)
    if family == "gaussian":
        return F.mse_loss(zero, t, reduction="none").numpy()
    if family == "laplace":
        return F.l1_loss(zero, t, reduction="none").numpy()
    if family == "huber":
        return F.huber_loss(zero, t, delta=p["delta"], reduction="none").numpy()
    return -torch.distributions.StudentT(p["df"], torch.tensor(0.0, dtype=torch.float64), p["scale"]).log_prob(t).numpy()


@settings(max_examples=30, deadline=None)
@given(control_values(w1.CONTROLS))
def test_w1_relations_hold_over_the_whole_control_range(params):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        r = w1.compute(**params)
    fam, n = params["family"], len(w1.DATA)
    for name in ("density", "nll_r", "loss_r", "data_nll", "total_nll_grid", "total_loss_grid"):
        assert np.isfinite(getattr(r, name)).all(), name
    assert all(math.isfinite(v) for v in (r.multiplier, r.constant, r.total_nll, r.minimiser, r.minimiser_nll))

    # The thesis: -log p(r) minus the constant is the torch loss times the multiplier.
    np.testing.assert_allclose(r.nll_r - r.constant, r.multiplier * r.loss_r, rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(r.nll_r, closed_form_nll(fam, r.residuals, params), rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(r.loss_r, torch_loss_per_point(fam, r.residuals, params), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(r.density, np.exp(-closed_form_nll(fam, r.residuals, params)), rtol=1e-9)
    if fam == "gaussian":
        s = params["scale"]
        assert r.multiplier == pytest.approx(1 / (2 * s**2))
        assert r.constant == pytest.approx(math.log(s) + 0.5 * math.log(2 * math.pi))
        np.testing.assert_allclose(
            r.nll_r, -torch.distributions.Normal(torch.tensor(0.0, dtype=torch.float64), s).log_prob(torch.tensor(r.residuals)).numpy(), rtol=1e-12)
    if fam == "laplace":
        s = params["scale"]
        assert (r.multiplier, r.constant) == (pytest.approx(1 / s), pytest.approx(math.log(2 * s)))
        np.testing.assert_allclose(
            r.nll_r, -torch.distributions.Laplace(torch.tensor(0.0, dtype=torch.float64), s).log_prob(torch.tensor(r.residuals)).numpy(), rtol=1e-12)
    if fam == "huber":  # HuberLoss(delta) = delta * SmoothL1Loss(beta=delta)
        d, t = params["delta"], torch.tensor(r.residuals)
        smooth = F.smooth_l1_loss(torch.zeros_like(t), t, beta=d, reduction="none").numpy()
        np.testing.assert_allclose(r.loss_r, d * smooth, rtol=1e-12, atol=1e-12)

    # The data panel: totals, and the constant's n copies that do not move anything.
    expected = closed_form_nll(fam, w1.DATA - params["prediction"], params)
    np.testing.assert_allclose(r.data_nll, expected, rtol=1e-10, atol=1e-10)
    assert r.total_nll == pytest.approx(expected.sum(), rel=1e-10)
    np.testing.assert_allclose(r.total_nll_grid, n * r.constant + r.multiplier * r.total_loss_grid, rtol=1e-10, atol=1e-9)
    i_nll, i_loss = np.argmin(r.total_nll_grid), np.argmin(r.total_loss_grid)
    # Ties (the flat L1 interval) may break differently after rounding: each argmin minimises the other.
    assert r.total_loss_grid[i_nll] <= r.total_loss_grid.min() * (1 + 1e-12) + 1e-12
    assert r.total_nll_grid[i_loss] <= r.total_nll_grid.min() + 1e-9 * abs(r.total_nll_grid.min()) + 1e-12

    # The minimiser is a global minimum (no grid point beats it) and lies among the data.
    assert r.minimiser_nll <= r.total_nll_grid.min() + 1e-9
    assert w1.DATA.min() <= r.minimiser_low <= r.minimiser_high <= w1.DATA.max()
    y, m = w1.DATA, r.minimiser
    if fam == "gaussian":
        assert m == pytest.approx(np.mean(y), abs=1e-12) and r.minimiser_low == r.minimiser_high
    if fam == "laplace":  # even count: every point between the two middle values is a median
        assert n % 2 == 0 and np.median(y) == pytest.approx(m)
        ys = np.sort(y)
        assert (r.minimiser_low, r.minimiser_high) == (ys[n // 2 - 1], ys[n // 2])
        inside = np.linspace(r.minimiser_low, r.minimiser_high, 5)
        l1 = [np.abs(y - c).sum() for c in inside]
        np.testing.assert_allclose(l1, l1[0], rtol=1e-12)  # flat on the interval
        assert min(np.abs(y - (r.minimiser_low - 0.01)).sum(), np.abs(y - (r.minimiser_high + 0.01)).sum()) > l1[0]
    if fam == "huber":
        d = params["delta"]
        assert abs(np.clip(y - m, -d, d).sum()) < 1e-6  # the estimating equation sum psi(r_i) = 0
        assert r.median_low - d - 1e-9 <= m <= r.median_high + d + 1e-9  # never further than delta from a median
        if d >= np.abs(y - y.mean()).max():
            assert m == pytest.approx(y.mean(), abs=1e-6)  # every residual in the core: the mean
    if fam == "student_t":
        nu, s = params["df"], params["scale"]
        res = y - m
        assert abs(((nu + 1) * res / (nu * s**2 + res**2)).sum()) < 1e-5  # zero derivative


def test_w1_huber_moves_from_the_median_to_the_mean_as_delta_grows():
    estimates = [w1.compute(family="huber", delta=d).minimiser for d in (0.2, 0.6, 1.0, 1.4, 1.8, 2.2, 2.6, 3.0, 3.4, 5.0)]
    mean = w1.DATA.mean()
    assert np.all(np.diff(np.abs(np.array(estimates) - mean)) <= 1e-7)
    small = w1.compute(family="huber", delta=0.2)
    assert small.median_low - 0.2 <= estimates[0] <= small.median_high + 0.2
    assert estimates[-1] == pytest.approx(mean, abs=1e-6)


def test_w1_heavy_tails_resist_the_outlier():
    # The outlier pulls the mean furthest, the Student-t estimate least.
    y = w1.DATA
    clean_median = np.median(y[:-1])
    pull = {f: abs(w1.compute(family=f, df=1.0).minimiser - clean_median) for f in ("gaussian", "huber", "student_t")}
    assert pull["gaussian"] > pull["huber"] > pull["student_t"]


def test_w1_huber_ignores_the_scale_control():
    assert w1.readouts(w1.compute(family="huber", scale=0.3)) == w1.readouts(w1.compute(family="huber", scale=3.0))


def test_w1_bad_parameters_name_the_parameter_and_range():
    with pytest.raises(ValueError, match=r"scale must be a number in \[0.3, 3.0\], got 0"):
        w1.compute(scale=0)
    with pytest.raises(ValueError, match=r"df must be a number in \[1.0, 30.0\], got 0.5"):
        w1.compute(df=0.5)
    with pytest.raises(ValueError, match=r"delta must be a number in \[0.2, 5.0\], got nan"):
        w1.compute(delta=float("nan"))
    with pytest.raises(ValueError, match=r"family must be one of \['gaussian', 'laplace', 'huber', 'student_t'\]"):
        w1.compute(family="cauchy")
    with pytest.raises(TypeError, match=r"unknown parameter\(s\) \['sigma'\]"):
        w1.compute(sigma=1.0)


def test_w1_live_view_moves_each_control_and_shows_what_compute_says():
    view = toolkit.LiveView(w1.EXPLORER)
    # Each control is moved while a family that uses it is selected, so the picture must change.
    moves = [("family", ("laplace", "student_t")), ("scale", (0.5, 2.5)), ("df", (1.0, 20.0)),
             ("prediction", (-2.5, 2.0)), ("family", ("huber",)), ("delta", (0.3, 4.0))]
    for name, values in moves:
        for value in values:
            before = view.image.value
            view.set(**{name: value})
            expected = w1.compute(**view.params)
            assert view.params[name] == value
            assert view.readouts == w1.readouts(expected)
            ax_d, ax_n, ax_t = view.figure.axes
            np.testing.assert_allclose(ax_d.lines[0].get_ydata(), expected.density)
            np.testing.assert_allclose(ax_n.lines[1].get_ydata(), expected.nll_r - expected.constant)
            np.testing.assert_allclose(ax_n.lines[2].get_ydata(), expected.multiplier * expected.loss_r)
            np.testing.assert_allclose(ax_t.lines[0].get_ydata(), expected.total_nll_grid)
            assert any(np.allclose(line.get_ydata(), [expected.total_nll]) for line in ax_t.lines)
            assert view.image.value != before


def test_w1_a_reused_figure_draws_exactly_what_a_fresh_one_draws():
    reused = toolkit.new_figure(w1.EXPLORER)
    toolkit.render(w1.EXPLORER, reused, w1.compute(family="laplace", scale=0.4, prediction=-2.0))
    r2 = w1.compute(family="student_t", df=1.5, prediction=1.0)
    assert toolkit.render(w1.EXPLORER, reused, r2) == toolkit.render(w1.EXPLORER, toolkit.new_figure(w1.EXPLORER), r2)
    assert len(reused.axes) == 3


def test_w1_static_view_has_one_frame_per_family():
    html = toolkit.static_html(w1.EXPLORER)
    assert f'data-frames="{len(w1.FAMILIES)}"' in html
    assert html.count("data:image/png;base64,") == len(w1.FAMILIES) + 1
