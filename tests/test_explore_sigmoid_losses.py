"""W5 (sigmoid with MSE versus cross-entropy): relations, the live view, bad parameters."""
import math
import warnings

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from scipy.special import expit

from d2lcore import likelihood
from d2lcore.explore import sigmoid_losses as w5
from d2lcore.explore import toolkit
from explorer_strategies import control_values


def _closed_forms(z, y):
    """sigma, both gradients and their ratio from the formulas, with scipy's sigmoid."""
    s = expit(np.asarray(z, dtype=np.float64))
    return s, 2 * (s - y) * s * (1 - s), s - y, 1 / (2 * s * (1 - s))


@settings(max_examples=30, deadline=None)
@given(control_values(w5.CONTROLS))
def test_w5_relations_hold_over_the_whole_control_range(params):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        r = w5.compute(**params)
    z, y = params["z"], params["y"]
    curves = (r.grid, r.mse_curve, r.bce_curve, r.grad_mse_curve, r.grad_bce_curve, r.ratio_curve)
    assert all(np.isfinite(c).all() and c.shape == (w5.GRID_POINTS,) for c in curves)
    assert all(math.isfinite(v) for v in (r.sigma, r.mse, r.bce, r.grad_mse, r.grad_bce, r.ratio))

    # BCE is minus the Bernoulli log-likelihood, and torch's BCEWithLogits agrees (the registry pair).
    zt = torch.tensor([z], dtype=torch.float64)
    yt = torch.tensor([float(y)], dtype=torch.float64)
    assert r.bce == pytest.approx(-float(torch.distributions.Bernoulli(logits=zt).log_prob(yt)), rel=1e-12, abs=1e-15)
    assert r.bce == pytest.approx(float(likelihood.get("bce").loss(zt, yt)), rel=1e-12, abs=1e-15)
    grid = torch.tensor(r.grid)
    np.testing.assert_allclose(r.bce_curve, F.binary_cross_entropy_with_logits(
        grid, torch.full_like(grid, float(y)), reduction="none").numpy(), rtol=1e-12, atol=1e-15)

    # Autograd's gradients and the ratio equal the closed forms, at the point and on the curves.
    s, g_mse, g_bce, ratio = _closed_forms(z, y)
    assert r.sigma == pytest.approx(s, rel=1e-12)
    assert r.mse == pytest.approx((s - y) ** 2, rel=1e-12, abs=1e-300)
    assert r.grad_mse == pytest.approx(g_mse, rel=1e-9, abs=1e-300)
    assert r.grad_bce == pytest.approx(g_bce, rel=1e-9, abs=1e-300)
    assert r.ratio == pytest.approx(ratio, rel=1e-9)
    s_c, g_mse_c, g_bce_c, ratio_c = _closed_forms(r.grid, y)
    np.testing.assert_allclose(r.mse_curve, (s_c - y) ** 2, rtol=1e-12)
    np.testing.assert_allclose(r.grad_mse_curve, g_mse_c, rtol=1e-9)
    np.testing.assert_allclose(r.grad_bce_curve, g_bce_c, rtol=1e-9)
    np.testing.assert_allclose(r.ratio_curve, ratio_c, rtol=1e-9)
    assert r.ratio >= 2 - 1e-12  # s(1 - s) <= 1/4: cross-entropy's gradient is always the larger

    # Confidently wrong (z on the wrong side of 0 for the label): sigma(-|z|) <= exp(-|z|), so
    # |d MSE/dz| = 2 (1-s)^2 s <= 2 exp(-|z|) -> 0 while |d BCE/dz| = 1 - sigma(-|z|) >= 1 - exp(-|z|) -> 1.
    if (y == 1 and z < 0) or (y == 0 and z > 0):
        assert abs(r.grad_mse) <= 2 * math.exp(-abs(z)) * (1 + 1e-12)
        assert abs(r.grad_bce) >= 1 - math.exp(-abs(z)) - 1e-12

    # Nothing plotted on a log axis reaches the floor: the clip is only a guard.
    assert np.abs(r.grad_mse_curve).min() > w5.LOG_FLOOR and np.abs(r.grad_bce_curve).min() > w5.LOG_FLOOR


@pytest.mark.parametrize("y", [0, 1])
def test_w5_a_confidently_wrong_unit_stalls_under_mse_but_not_under_cross_entropy(y):
    r = w5.compute(z=0.0, y=y)
    wrong = r.grid <= -1 if y == 1 else r.grid >= 1          # past the MSE gradient's peak at |z| = log 2
    order = np.argsort(np.abs(r.grid[wrong]))                 # moving further onto the wrong side
    g_mse, g_bce = np.abs(r.grad_mse_curve[wrong][order]), np.abs(r.grad_bce_curve[wrong][order])
    assert (np.diff(g_mse) < 0).all() and (np.diff(g_bce) > 0).all()
    assert g_mse[-1] < 1e-4 and g_bce[-1] > 1 - 1e-4          # at |z| = 10: 2 e^-10 ~ 9e-5 versus ~1
    # The ratio does not depend on the label.
    np.testing.assert_allclose(r.ratio_curve, w5.compute(z=0.0, y=1 - y).ratio_curve, rtol=1e-12)


def test_w5_bad_parameters_name_the_parameter_and_range():
    with pytest.raises(ValueError, match=r"z must be a number in \[-10.0, 10.0\], got 11"):
        w5.compute(z=11)
    with pytest.raises(ValueError, match=r"z must be a number in \[-10.0, 10.0\], got nan"):
        w5.compute(z=float("nan"))
    with pytest.raises(ValueError, match=r"y must be one of \[0, 1\], got 0.5"):
        w5.compute(y=0.5)
    with pytest.raises(ValueError, match=r"y must be one of \[0, 1\], got 2"):
        w5.compute(y=2)
    with pytest.raises(TypeError, match=r"unknown parameter\(s\) \['label'\]"):
        w5.compute(label=1)


def test_w5_live_view_moves_each_control_and_shows_what_compute_says():
    view = toolkit.LiveView(w5.EXPLORER)
    for name, values in {"z": (-7.5, 3.2), "y": (0, 1)}.items():
        for value in values:
            before = view.image.value
            view.set(**{name: value})
            r = w5.compute(**view.params)
            assert view.params[name] == value
            assert view.readouts == w5.readouts(r)
            assert view.readout_widget.value == toolkit.readout_html(view.readouts)
            assert "nats" in view.readouts["BCE -log p(y)"]
            losses, grads = view.figure.axes
            np.testing.assert_array_equal(losses.lines[0].get_ydata(), r.mse_curve)
            np.testing.assert_array_equal(losses.lines[1].get_ydata(), r.bce_curve)
            np.testing.assert_array_equal(losses.lines[2].get_ydata(), [r.mse, r.bce])
            np.testing.assert_array_equal(losses.lines[3].get_xdata(), [r.z, r.z])  # the current z
            np.testing.assert_array_equal(grads.lines[0].get_ydata(), np.abs(r.grad_mse_curve))
            np.testing.assert_array_equal(grads.lines[1].get_ydata(), np.abs(r.grad_bce_curve))
            np.testing.assert_array_equal(grads.lines[2].get_ydata(), r.ratio_curve)
            np.testing.assert_array_equal(grads.lines[3].get_ydata(), [abs(r.grad_mse), abs(r.grad_bce), r.ratio])
            assert grads.get_yscale() == "log" and losses.get_yscale() == "linear"
            assert view.image.value != before


def test_w5_a_reused_figure_draws_exactly_what_a_fresh_one_draws():
    reused = toolkit.new_figure(w5.EXPLORER)
    toolkit.render(w5.EXPLORER, reused, w5.compute(z=9.0, y=0))
    r2 = w5.compute(z=-2.5, y=1)
    assert toolkit.render(w5.EXPLORER, reused, r2) == toolkit.render(w5.EXPLORER, toolkit.new_figure(w5.EXPLORER), r2)
    assert len(reused.axes) == 2
