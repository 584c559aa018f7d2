"""W3 likelihood versus MSE: the Gaussian NLL is an increasing affine function of the MSE."""
import math
import warnings

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from torch.distributions import Normal

from d2lcore import likelihood
from d2lcore.explore import likelihood_vs_mse as w3
from d2lcore.explore import toolkit
from explorer_strategies import control_values


def _mean_nll(w, b, sigma):
    """Mean Gaussian NLL of the explorer's data, straight from torch.distributions."""
    x, y = torch.tensor(w3.X), torch.tensor(w3.Y)
    return -Normal(w * x + b, sigma).log_prob(y).mean()


@settings(max_examples=30, deadline=None)
@given(control_values(w3.CONTROLS))
def test_w3_relations_hold_over_the_whole_control_range(params):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        r = w3.compute(**params)
    for value in (r.mse, r.nll, r.sigma, r.rms, r.nll_surface, r.mse_surface, r.label_b):
        assert np.isfinite(value).all()
    w, b, s = params["w"], params["b"], r.sigma
    x, y = torch.tensor(w3.X), torch.tensor(w3.Y)

    # The MSE and the sigma used.
    assert r.mse == pytest.approx(float(torch.nn.functional.mse_loss(w * x + b, y)), rel=1e-12)
    assert r.rms == pytest.approx(math.sqrt(r.mse), rel=1e-12)
    assert s == (r.rms if params["learn_sigma"] else params["sigma"])

    # NLL = MSE / (2 sigma^2) + log sigma + log(2 pi) / 2, as the registry says and as torch's Normal says.
    assert r.nll == pytest.approx(r.mse / (2 * s**2) + math.log(s) + 0.5 * math.log(2 * math.pi), rel=1e-12)
    assert r.nll == pytest.approx(likelihood.get("mse").nll_from_loss(r.mse, sigma=s), rel=1e-12)
    assert r.nll == pytest.approx(float(_mean_nll(w, b, s)), rel=1e-10, abs=1e-12)
    W, B = np.meshgrid(r.w_axis, r.b_axis)  # rows are b, columns w, as in the surfaces
    surface = -Normal(torch.tensor(W)[..., None] * x + torch.tensor(B)[..., None], s).log_prob(y).mean(-1)
    np.testing.assert_allclose(r.nll_surface, surface.numpy(), rtol=1e-10)
    np.testing.assert_allclose(r.mse_surface, ((y - (torch.tensor(W)[..., None] * x + torch.tensor(B)[..., None]))**2)
                               .mean(-1).numpy(), rtol=1e-12)

    # Both surfaces have the same minimiser on the grid, next to the least-squares solution.
    i = np.unravel_index(np.argmin(r.mse_surface), r.mse_surface.shape)
    assert r.nll_surface[i] == r.nll_surface.min()
    solution = torch.linalg.lstsq(torch.stack([x, torch.ones_like(x)], 1), y[:, None]).solution.flatten()
    assert (r.w_star, r.b_star) == pytest.approx(solution.tolist(), abs=1e-10)
    cell_w, cell_b = r.w_axis[1] - r.w_axis[0], r.b_axis[1] - r.b_axis[0]
    assert abs(r.w_axis[i[1]] - r.w_star) <= cell_w / 2 + 1e-12 and abs(r.b_axis[i[0]] - r.b_star) <= cell_b / 2 + 1e-12
    # ... and the continuous NLL surface is flat there, whatever sigma.
    wb = torch.tensor([r.w_star, r.b_star], dtype=torch.float64, requires_grad=True)
    (grad,) = torch.autograd.grad(_mean_nll(wb[0], wb[1], s), wb)
    assert grad.abs().max() < 1e-10
    assert r.nll_star == pytest.approx(float(_mean_nll(r.w_star, r.b_star, s)), rel=1e-10)

    # The maximum-likelihood sigma for this line is its RMS residual: every other sigma does worse.
    best = float(_mean_nll(w, b, r.rms))
    for factor in (0.9, 0.999, 1.001, 1.1):
        assert float(_mean_nll(w, b, r.rms * factor)) > best
    if params["learn_sigma"]:  # the profile likelihood: log(2 pi e MSE) / 2
        assert r.nll == pytest.approx(0.5 * math.log(2 * math.pi * math.e * r.mse), rel=1e-12)

    # The contour labels sit on their contours: MSE(w_star, label_b) is the level.
    at_labels = ((y[None, :] - (r.w_star * x[None, :] + torch.tensor(r.label_b)[:, None]))**2).mean(-1)
    np.testing.assert_allclose(at_labels.numpy(), r.mse_levels, rtol=1e-10)
    np.testing.assert_allclose(r.nll_levels, likelihood.get("mse").nll_from_loss(r.mse_levels, sigma=s), rtol=1e-12)


def test_w3_bad_parameters_name_the_parameter_and_range():
    with pytest.raises(ValueError, match=r"sigma must be a number in \[0.2, 3.0\], got 0"):
        w3.compute(sigma=0)
    with pytest.raises(ValueError, match=r"w must be a number in \[-1.0, 4.0\], got 5"):
        w3.compute(w=5)
    with pytest.raises(ValueError, match=r"b must be a number in \[-2.0, 3.0\], got nan"):
        w3.compute(b=float("nan"))
    with pytest.raises(ValueError, match="learn_sigma must be True or False, got 1"):
        w3.compute(learn_sigma=1)
    with pytest.raises(TypeError, match=r"unknown parameter\(s\) \['noise'\]"):
        w3.compute(noise=1.0)


def test_live_view_moves_each_control_and_shows_what_compute_says():
    view = toolkit.LiveView(w3.EXPLORER)
    xs = np.array([-2.2, 2.2])
    for name, values in {"w": (2.5, -0.5), "b": (1.0, -1.5), "sigma": (0.4, 2.5), "learn_sigma": (True, False)}.items():
        for value in values:
            before = view.image.value
            view.set(**{name: value})
            expected = w3.compute(**view.params)
            p = view.params
            assert p[name] == value
            assert view.readouts == w3.readouts(expected)
            ax_mse, ax_nll, ax_data = view.figure.axes
            np.testing.assert_array_equal(ax_mse.images[0].get_array(), expected.mse_surface)
            np.testing.assert_array_equal(ax_nll.images[0].get_array(), expected.nll_surface)
            for ax in (ax_mse, ax_nll):  # the current point and the least-squares point
                assert (ax.lines[0].get_xdata()[0], ax.lines[0].get_ydata()[0]) == (p["w"], p["b"])
                assert (ax.lines[1].get_xdata()[0], ax.lines[1].get_ydata()[0]) == (expected.w_star, expected.b_star)
            np.testing.assert_allclose(ax_data.lines[0].get_ydata(), p["w"] * xs + p["b"])
            band = ax_data.collections[0].get_paths()[0].vertices[:, 1]  # the +-sigma band
            assert np.ptp(band) == pytest.approx(np.ptp(p["w"] * xs + p["b"]) + 2 * expected.sigma)
            assert view.image.value != before  # every one of these moves changes what is drawn


def test_with_sigma_learned_the_sigma_slider_changes_nothing():
    view = toolkit.LiveView(w3.EXPLORER, learn_sigma=True, w=2.0)
    before, readouts = view.image.value, view.readouts
    view.set(sigma=2.7)
    assert view.image.value == before and view.readouts == readouts
    assert view.result.sigma == pytest.approx(view.result.rms)


def test_a_reused_figure_draws_exactly_what_a_fresh_one_draws():
    reused = toolkit.new_figure(w3.EXPLORER)
    toolkit.render(w3.EXPLORER, reused, w3.compute(w=3.5, b=2.0, learn_sigma=True))
    r2 = w3.compute(w=0.0, b=-1.0, sigma=0.3)
    assert toolkit.render(w3.EXPLORER, reused, r2) == toolkit.render(w3.EXPLORER, toolkit.new_figure(w3.EXPLORER), r2)
    assert len(reused.axes) == 3 and len(reused.axes[2].lines) == 3
