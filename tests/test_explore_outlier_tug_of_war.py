"""W12 Outlier tug-of-war: fits are minimisers of the registry losses, influence curves are
their derivatives, and heavy tails bound an outlier's pull."""
import math
import warnings

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from scipy import optimize, special, stats

from d2lcore import likelihood
from d2lcore.explore import outlier_tug_of_war as w12
from d2lcore.explore import toolkit
from explorer_strategies import control_values

D = torch.float64
DF = likelihood.get("student_t").params["df"]


def closed_form_psi(name, r, delta):
    """d(-log p)/dr at unit scale, written out by hand (independent of autograd and the registry)."""
    r = np.asarray(r, dtype=float)
    return {"mse": r, "l1": np.sign(r), "huber": np.clip(r, -delta, delta),
            "student_t": (DF + 1) * r / (DF + r**2)}[name]


def closed_form_logpdf(name, r, scale, delta):
    """Log-density of each loss's noise model with the given scale, from scipy or by hand."""
    if name == "mse":
        return stats.norm.logpdf(r, 0, scale)
    if name == "l1":
        return stats.laplace.logpdf(r, 0, scale)
    if name == "student_t":
        return stats.t.logpdf(r, DF, 0, scale)
    z = math.sqrt(2 * math.pi) * math.erf(delta / math.sqrt(2)) + 2 / delta * math.exp(-delta**2 / 2)
    u = np.abs(r) / scale
    rho = np.where(u <= delta, u**2 / 2, delta * (u - delta / 2))
    return -rho - math.log(z) - math.log(scale)


def registry_total(name, x, y, slope, intercept, delta):
    params = {"huber": {"delta": delta}, "student_t": {"df": DF, "scale": 1.0}}.get(name, {})
    x, y = torch.tensor(x, dtype=D), torch.tensor(y, dtype=D)
    return float(likelihood.get(name).loss(slope * x + intercept, y, **params))


def assert_local_minimum(name, r, k, delta):
    """No small step of (slope, intercept), in eight directions, lowers the loss. The steps are
    1e-5 (x reaches 10, so about 1e-4 in prediction); a converged fit (IRLS tolerance 1e-12)
    cannot gain more than rounding, 1e-12, from them."""
    a, b = r.slopes[k], r.intercepts[k]
    best = registry_total(name, r.x, r.y, a, b, delta)
    for da, db in [(1, 0), (-1, 0), (0, 1), (0, -1), (1, 1), (-1, -1), (1, -1), (-1, 1)]:
        moved = registry_total(name, r.x, r.y, a + 1e-5 * da, b + 1e-5 * db, delta)
        assert moved >= best - 1e-12, (name, da, db, best - moved)


@settings(max_examples=30, deadline=None)
@given(control_values(w12.CONTROLS))
def test_w12_relations_hold_over_the_whole_control_range(params):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        r = w12.compute(**params)
    delta = params["delta"]
    chosen = tuple(name for name in w12.LOSSES if params[name])
    assert r.losses == chosen
    n_out = params["outliers"]
    assert r.x.shape == r.y.shape == (w12.N_POINTS + n_out,) and r.outlier.sum() == n_out
    for field in ("x", "y", "slopes", "intercepts", "residuals", "scales", "residual_nll", "densities",
                  "influence", "outlier_residuals", "outlier_pull"):
        assert np.isfinite(getattr(r, field)).all(), field
    assert r.converged.all()
    # the outliers sit `distance` above the true line, give or take their own small fixed scatter
    lift = r.y[r.outlier] - (w12.TRUE_INTERCEPT + w12.TRUE_SLOPE * r.x[r.outlier]) - params["distance"]
    assert np.all(np.abs(lift) < 2.0)

    for k, name in enumerate(chosen):
        if name == "mse":  # the closed form is torch's least squares
            design = torch.tensor(np.c_[np.ones_like(r.x), r.x], dtype=D)
            coef = torch.linalg.lstsq(design, torch.tensor(r.y, dtype=D)[:, None]).solution[:, 0]
            assert r.intercepts[k] == pytest.approx(float(coef[0]), abs=1e-9)
            assert r.slopes[k] == pytest.approx(float(coef[1]), abs=1e-9)
        assert_local_minimum(name, r, k, delta)

        # influence: autograd through the distribution's own log_prob (the registry's nll), and
        # the hand-written derivative; bounded for L1 and Huber, redescending for Student-t
        grid = torch.tensor(r.influence_grid, dtype=D, requires_grad=True)
        params_k = {"huber": {"delta": delta}}.get(name, {})
        nll = likelihood.get(name).nll(torch.zeros_like(grid), grid, **params_k) * len(grid)
        (auto,) = torch.autograd.grad(nll, grid)
        np.testing.assert_allclose(r.influence[k], auto.numpy(), atol=1e-12)
        np.testing.assert_allclose(r.influence[k], closed_form_psi(name, r.influence_grid, delta), atol=1e-12)
        np.testing.assert_allclose(r.outlier_pull[k], closed_form_psi(name, r.outlier_residuals[k], delta),
                                   atol=1e-12)
        line = r.intercepts[k] + r.slopes[k] * r.x
        np.testing.assert_allclose(r.outlier_residuals[k], (r.y - line)[r.outlier], atol=1e-12)
        if name == "huber":
            assert np.abs(r.influence[k]).max() <= delta + 1e-12
        if name == "l1":
            assert np.abs(r.influence[k]).max() <= 1.0
        if name == "student_t":
            far = np.abs(r.influence_grid) >= 20
            assert np.abs(r.influence[k][far]).max() <= (DF + 1) / 20  # -> 0 like (df + 1) / |r|
            assert np.abs(r.influence[k]).max() == pytest.approx((DF + 1) / (2 * math.sqrt(DF)), rel=1e-3)

    # residual densities: the reference is the most robust chosen fit; each scale is the MLE
    if not chosen:
        assert r.reference == "" and r.residuals.size == 0 and r.densities.shape == (0, r.density_grid.size)
        return
    ref = chosen[-1]
    k = chosen.index(ref)
    np.testing.assert_allclose(r.residuals, r.y - r.intercepts[k] - r.slopes[k] * r.x, atol=1e-12)
    for j, name in enumerate(chosen):
        s = r.scales[j]
        mean_nll = lambda scale: -closed_form_logpdf(name, r.residuals, scale, delta).mean()  # noqa: E731
        if name == "mse":  # closed-form MLEs; the search ends at 1e-7 in log-scale
            assert s == pytest.approx(np.sqrt(np.mean(r.residuals**2)), rel=1e-6)
        if name == "l1":
            assert s == pytest.approx(np.mean(np.abs(r.residuals)), rel=1e-6)
        assert mean_nll(s * 1.001) >= mean_nll(s) - 1e-12 and mean_nll(s / 1.001) >= mean_nll(s) - 1e-12
        assert r.residual_nll[j] == pytest.approx(mean_nll(s), rel=1e-10, abs=1e-12)
        np.testing.assert_allclose(r.densities[j], np.exp(closed_form_logpdf(name, r.density_grid, s, delta)),
                                   rtol=1e-9, atol=1e-300)


def test_w12_the_tug_of_war_mse_follows_the_outliers_robust_losses_let_go():
    # five outliers at the right edge, where they have leverage on the slope
    sweep = {d: w12.compute(outliers=5, outlier_x=10.0, distance=d) for d in (0.0, 5.0, 10.0, 15.0, 20.0)}
    slope = {d: dict(zip(r.losses, r.slopes)) for d, r in sweep.items()}
    # least squares is linear in y: the slope moves by the same amount per sd, without bound
    steps = np.diff([slope[d]["mse"] for d in sorted(slope)])
    np.testing.assert_allclose(steps, steps[0], rtol=1e-9)
    assert steps[0] > 0.05
    # L1 and Huber cap each pull: once every outlier is in the tail, farther changes nothing
    for name in ("l1", "huber"):
        assert slope[10.0][name] == pytest.approx(slope[20.0][name], abs=1e-9)
        assert slope[15.0][name] == pytest.approx(slope[20.0][name], abs=1e-9)
        moved = max(abs(slope[d][name] - slope[0.0][name]) for d in slope)
        assert moved < abs(slope[20.0]["mse"] - slope[0.0]["mse"]) / 4
    # Student-t's pull falls off: the line drifts back towards the clean fit
    back = [abs(slope[d]["student_t"] - slope[0.0]["student_t"]) for d in (5.0, 10.0, 15.0, 20.0)]
    assert back == sorted(back, reverse=True) and back[-1] < back[0] / 2


def test_w12_without_outliers_every_fit_is_close_to_the_truth():
    r = w12.compute(outliers=0)
    x = r.x
    # standard errors of the least-squares line with unit noise; robust fits lose some
    # efficiency (L1 about 1/0.64 in variance), so allow 5 standard errors for all.
    sxx = np.sum((x - x.mean()) ** 2)
    se_slope, se_intercept = 1 / math.sqrt(sxx), math.sqrt(1 / len(x) + x.mean() ** 2 / sxx)
    assert len(r.losses) == 4
    assert np.all(np.abs(r.slopes - w12.TRUE_SLOPE) < 5 * se_slope)
    assert np.all(np.abs(r.intercepts - w12.TRUE_INTERCEPT) < 5 * se_intercept)
    # with a delta wider than every residual, Huber is least squares
    wide = w12.compute(outliers=0, delta=5.0, l1=False, student_t=False)
    assert np.abs(wide.residuals).max() < 5.0
    np.testing.assert_allclose(wide.slopes[1], wide.slopes[0], atol=1e-9)
    np.testing.assert_allclose(wide.intercepts[1], wide.intercepts[0], atol=1e-9)


def test_w12_l1_fit_is_the_global_minimum_found_by_linear_programming():
    r = w12.compute(outliers=4, distance=12.5, outlier_x=2.0, mse=False, huber=False, student_t=False)
    n = len(r.x)
    # minimise sum(u + v) subject to b + a x + u - v = y, u, v >= 0
    cost = np.r_[0, 0, np.ones(2 * n)]
    equality = np.c_[np.ones(n), r.x, np.eye(n), -np.eye(n)]
    bounds = [(None, None)] * 2 + [(0, None)] * (2 * n)
    lp = optimize.linprog(cost, A_eq=equality, b_eq=r.y, bounds=bounds, method="highs")
    assert lp.status == 0
    ours = np.abs(r.y - r.intercepts[0] - r.slopes[0] * r.x).sum()
    assert ours == pytest.approx(lp.fun, rel=1e-9)


def test_w12_bad_parameters_name_the_parameter_and_range():
    with pytest.raises(ValueError, match=r"distance must be a number in \[0.0, 20.0\], got -1"):
        w12.compute(distance=-1)
    with pytest.raises(ValueError, match=r"delta must be a number in \[0.2, 5.0\], got 0"):
        w12.compute(delta=0)
    with pytest.raises(ValueError, match=r"outliers must be a whole number in \[0, 5\], got 2.5"):
        w12.compute(outliers=2.5)
    with pytest.raises(ValueError, match=r"outliers must be a number in \[0, 5\], got 6"):
        w12.compute(outliers=6)
    with pytest.raises(ValueError, match="huber must be True or False, got 1"):
        w12.compute(huber=1)
    with pytest.raises(TypeError, match=r"unknown parameter\(s\) \['df'\]"):
        w12.compute(df=3)


def test_w12_no_loss_selected_draws_data_only():
    off = dict(mse=False, l1=False, huber=False, student_t=False)
    r = w12.compute(**off)
    assert r.losses == () and r.slopes.size == 0
    assert w12.readouts(r)["fits"] == "no loss selected"
    fig = toolkit.new_figure(w12.EXPLORER)
    toolkit.render(w12.EXPLORER, fig, r)
    assert "no loss selected" in fig.axes[0].get_title()
    assert len(fig.axes[0].lines) == 3 and not fig.axes[0].collections  # data, outliers, truth: no fit
    assert not fig.axes[2].collections and not fig.axes[2].texts  # no influence curves, no colour key
    toolkit.render(w12.EXPLORER, fig, w12.compute(l1=False))
    assert [t.get_text() for t in fig.axes[2].texts] == [w12.NAMES[n] for n in ("student_t", "huber", "mse")]


def test_w12_live_view_moves_each_control_and_shows_what_compute_says():
    view = toolkit.LiveView(w12.EXPLORER)
    moves = {"distance": (3.0, 17.5), "outliers": (0, 5), "outlier_x": (1.0, 6.5), "delta": (0.3, 2.5),
             "mse": (False, True), "l1": (False, True), "huber": (False, True), "student_t": (False, True)}
    for name, values in moves.items():
        for value in values:
            before = view.image.value
            view.set(**{name: value})
            expected = w12.compute(**view.params)
            assert view.params[name] == value
            assert view.readouts == w12.readouts(expected)
            assert view.readout_widget.value == toolkit.readout_html(view.readouts)
            ax_fit, ax_res, ax_psi = view.figure.axes
            np.testing.assert_allclose(ax_fit.lines[0].get_ydata(), expected.y[~expected.outlier])
            if expected.outlier.any():
                np.testing.assert_allclose(ax_fit.lines[1].get_ydata(), expected.y[expected.outlier])
            # one curve per chosen loss, in each panel (drawn as one LineCollection per panel)
            curves = {ax: ax.collections[0].get_segments() if expected.losses else []
                      for ax in (ax_fit, ax_res, ax_psi)}
            assert all(len(c) == len(expected.losses) for c in curves.values())
            for seg, a, b in zip(curves[ax_fit], expected.slopes, expected.intercepts):
                np.testing.assert_allclose(seg[:, 1], b + a * seg[:, 0])
            for seg, dens in zip(curves[ax_res], expected.densities):
                np.testing.assert_allclose(seg[:, 1], np.log10(np.maximum(dens, 1e-5)))  # log axis
            for seg, psi in zip(curves[ax_psi], expected.influence):
                np.testing.assert_allclose(seg[:, 1], psi)
            if expected.losses and expected.outlier.any():  # the outliers' pull markers
                np.testing.assert_allclose(ax_psi.collections[1].get_offsets(),
                                           np.c_[expected.outlier_residuals.ravel(), expected.outlier_pull.ravel()])
            # delta shows once Huber is fitted (it is, by default); every other move is visible
            assert view.image.value != before, (name, value)


def test_w12_a_reused_figure_draws_exactly_what_a_fresh_one_draws():
    explorer = w12.EXPLORER
    reused = toolkit.new_figure(explorer)
    toolkit.render(explorer, reused, w12.compute(outliers=5, distance=20.0, outlier_x=0.0, l1=False))
    r2 = w12.compute(outliers=1, distance=3.0, mse=False, delta=2.0)
    again = toolkit.render(explorer, reused, r2)
    fresh = toolkit.render(explorer, toolkit.new_figure(explorer), r2)
    assert again == fresh
    assert len(reused.axes) == 3
