"""W8 weight decay is a prior: the Gaussian prior gives ridge, the Laplace prior gives the lasso."""
import math
import warnings

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from scipy import integrate, optimize, stats

from d2lcore.explore import toolkit
from d2lcore.explore import weight_decay_prior as w8
from explorer_strategies import control_values

X_PATH, Y_PATH = torch.tensor(w8.PATH_X), torch.tensor(w8.PATH_Y)


def _data(n, sigma):
    x = torch.tensor(w8.X_POOL[:n])
    return x, w8.W_TRUE * x + sigma * torch.tensor(w8.NOISE_POOL[:n])


def _ridge(lam):
    return torch.linalg.solve(X_PATH.T @ X_PATH + lam * torch.eye(6, dtype=torch.float64), X_PATH.T @ Y_PATH).numpy()


def _assert_lasso_optimal(w, lam):
    """Optimality (KKT) of argmin 1/2 ||y - X w||^2 + lam ||w||_1: the correlation of each feature
    with the residual is lam sign(w_j) where w_j != 0 and at most lam in size where w_j = 0."""
    corr = (X_PATH.T @ (Y_PATH - X_PATH @ torch.tensor(w))).numpy()
    tol = 1e-8 * max(1.0, lam)  # coordinate descent stops when no coordinate moves by 1e-13
    nonzero = w != 0
    np.testing.assert_allclose(corr[nonzero], lam * np.sign(w[nonzero]), atol=tol)
    assert np.all(np.abs(corr[~nonzero]) <= lam + tol)


@settings(max_examples=30, deadline=None)
@given(control_values(w8.CONTROLS))
def test_w8_relations_hold_over_the_whole_control_range(params):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        r = w8.compute(**params)
    for value in (r.likelihood, r.prior_density, r.posterior, r.mle, r.map, r.lam, r.path_weights, r.view):
        assert np.isfinite(value).all()
    n, sigma, scale = params["n"], params["sigma"], params["prior_scale"]
    x, y = _data(n, sigma)
    sxx, sxy = float(x @ x), float(x @ y)

    # Each curve is a density on the grid (Simpson's rule, independent of the trapezoid used inside).
    # The tolerance is the trapezoid's own error on the sharpest curve, a Laplace prior with
    # b = 0.05, i.e. 25 grid steps h per b: about h^2 / (12 b^2) = 1.3e-4.
    for density in (r.likelihood, r.prior_density, r.posterior):
        assert (density >= 0).all() and integrate.simpson(density, x=r.w_grid) == pytest.approx(1.0, abs=3e-4)
    assert r.mle == pytest.approx(float(torch.linalg.lstsq(x[:, None], y[:, None]).solution), rel=1e-10)

    # The posterior's mode on the grid is the MAP, to the grid's resolution.
    step = r.w_grid[1] - r.w_grid[0]
    if r.w_grid[0] < r.map < r.w_grid[-1]:
        assert abs(r.w_grid[np.argmax(r.posterior)] - r.map) <= step

    if params["prior"] == "gaussian":
        lam = sigma**2 / scale**2
        assert r.lam == pytest.approx(lam, rel=1e-12)
        assert r.map == pytest.approx(float(torch.linalg.solve(torch.tensor([[sxx + lam]], dtype=torch.float64), torch.tensor([sxy], dtype=torch.float64))),
                                      rel=1e-10, abs=1e-12)
        # The convention: MAP minimises 1/2 sum (y - w x)^2 + lam/2 w^2, equivalently F.mse_loss + (lam/n) w^2 ...
        w = torch.tensor(r.map, dtype=torch.float64, requires_grad=True)
        (grad,) = torch.autograd.grad(F.mse_loss(w * x, y) + lam / n * w**2, w)
        assert abs(float(grad)) < 1e-9 * (1 + sxx / n)
        # ... and the grid posterior is the conjugate Normal(MAP, sigma^2 / (sxx + lam)), where the grid holds it.
        sd = sigma / math.sqrt(sxx + lam)
        posterior = stats.norm(r.map, sd)
        if posterior.cdf(r.w_grid[-1]) - posterior.cdf(r.w_grid[0]) > 1 - 1e-9:
            np.testing.assert_allclose(r.posterior, posterior.pdf(r.w_grid), atol=1e-4 * posterior.pdf(r.map))
        # More data, less prior: the MAP is the MLE shrunk by sxx / (sxx + lam) -> 1 as n grows.
        assert r.map == pytest.approx(r.mle * sxx / (sxx + lam), rel=1e-10, abs=1e-12)
        np.testing.assert_allclose(r.path_weights, _ridge(lam), rtol=1e-9, atol=1e-12)
    else:
        lam = sigma**2 / scale
        assert r.lam == pytest.approx(lam, rel=1e-12)
        # The MAP minimises 1/2 sum (y - w x)^2 + lam |w|, checked by a general-purpose minimiser ...
        objective = lambda w: 0.5 * float(((y - w * x) ** 2).sum()) + lam * abs(w)
        found = optimize.minimize_scalar(objective, bounds=(-20, 20), method="bounded",
                                         options={"xatol": 1e-10}).x
        assert objective(r.map) <= objective(found) + 1e-9
        assert objective(r.map) < min(objective(r.map - 1e-4), objective(r.map + 1e-4))
        # ... and is exactly 0 when the data's pull |sxy| does not beat lam (the kink of the prior).
        assert (r.map == 0.0) == (abs(sxy) <= lam)
        # More data, less prior: the MAP is within lam / sxx of the MLE.
        assert abs(r.map - r.mle) <= lam / sxx * (1 + 1e-12)
        _assert_lasso_optimal(r.path_weights, lam)
    assert abs(r.map) <= abs(r.mle) + 1e-15 and r.map * r.mle >= 0  # a prior at 0 only shrinks


def test_w8_map_tends_to_the_mle_as_n_grows():
    for prior in ("gaussian", "laplace"):
        gaps = [abs(r.map - r.mle) / abs(r.mle) for r in (w8.compute(prior=prior, n=n) for n in (20, 50, 100))]
        assert gaps[0] > gaps[1] > gaps[2]
    # For the Gaussian the shrinkage factor MAP/MLE = sxx / (sxx + lam) rises with every point.
    factors = [r.map / r.mle for r in (w8.compute(n=n) for n in range(1, 101))]
    assert np.all(np.diff(factors) > 0) and factors[-1] > 0.85


def test_w8_paths_ridge_shrinks_lasso_selects():
    ridge, lasso = w8._path("gaussian"), w8._path("laplace")
    for lam, row in zip(w8.PATH_LAMBDAS, ridge):
        np.testing.assert_allclose(row, _ridge(lam), rtol=1e-9, atol=1e-12)
    for lam, row in zip(w8.PATH_LAMBDAS, lasso):
        _assert_lasso_optimal(row, lam)
    assert np.all(ridge != 0)  # a Gaussian prior never sets a weight exactly to zero
    corr = np.abs((X_PATH.T @ Y_PATH).numpy())
    assert np.all(lasso[w8.PATH_LAMBDAS >= corr.max()] == 0)  # beyond max |X^T y| every weight is 0
    some_zero = (lasso == 0).any(axis=1) & (lasso != 0).any(axis=1)
    assert some_zero.any()  # sparse but not empty solutions in between
    # With almost no prior both are least squares.
    ols = torch.linalg.lstsq(X_PATH, Y_PATH[:, None]).solution.flatten().numpy()
    np.testing.assert_allclose(ridge[0], ols, atol=1e-3)
    np.testing.assert_allclose(lasso[0], ols, atol=1e-3)


def _steps(optimizer_cls, loss_fn, count=5, **kwargs):
    w = torch.zeros(6, dtype=torch.float64, requires_grad=True)
    opt = optimizer_cls([w], **kwargs)
    for _ in range(count):
        opt.zero_grad()
        loss_fn(w).backward()
        opt.step()
    return w.detach().clone()


def test_sgd_weight_decay_is_an_l2_penalty_and_adamw_is_not():
    lam, lr = 0.7, 1e-3
    data = lambda w: 0.5 * ((Y_PATH - X_PATH @ w) ** 2).sum()
    penalised = lambda w: data(w) + lam / 2 * (w**2).sum()
    for momentum in (0.0, 0.9):
        decayed = _steps(torch.optim.SGD, data, lr=lr, momentum=momentum, weight_decay=lam)
        torch.testing.assert_close(decayed, _steps(torch.optim.SGD, penalised, lr=lr, momentum=momentum),
                                   rtol=1e-12, atol=1e-12)
    coupled = _steps(torch.optim.Adam, penalised, lr=0.05)
    torch.testing.assert_close(_steps(torch.optim.Adam, data, lr=0.05, weight_decay=lam), coupled,
                               rtol=1e-12, atol=1e-12)
    decoupled = _steps(torch.optim.AdamW, data, lr=0.05, weight_decay=lam)
    assert (decoupled - coupled).abs().max() > 1e-4


def test_sgd_weight_decay_on_the_mean_loss_finds_the_gaussian_map():
    # The docstring's convention: weight_decay = 2 lam / n on F.mse_loss gives the MAP.
    n, sigma, scale = 12, 1.0, 0.3
    r = w8.compute(n=n, sigma=sigma, prior_scale=scale)
    x, y = _data(n, sigma)
    decay = 2 * r.lam / n
    w = torch.zeros((), dtype=torch.float64, requires_grad=True)
    opt = torch.optim.SGD([w], lr=0.5 / (2 * float(x @ x) / n + decay), weight_decay=decay)
    for _ in range(500):
        opt.zero_grad()
        F.mse_loss(w * x, y).backward()
        opt.step()
    assert float(w.detach()) == pytest.approx(r.map, rel=1e-9)


def test_w8_bad_parameters_name_the_parameter_and_range():
    with pytest.raises(ValueError, match=r"prior must be one of \['gaussian', 'laplace'\], got 'cauchy'"):
        w8.compute(prior="cauchy")
    with pytest.raises(ValueError, match=r"prior_scale must be a number in \[0.05, 3.0\], got 0"):
        w8.compute(prior_scale=0)
    with pytest.raises(ValueError, match=r"n must be a number in \[1, 100\], got 0"):
        w8.compute(n=0)
    with pytest.raises(ValueError, match=r"n must be a whole number in \[1, 100\], got 2.5"):
        w8.compute(n=2.5)
    with pytest.raises(ValueError, match=r"sigma must be a number in \[0.2, 3.0\], got -1"):
        w8.compute(sigma=-1)


def test_live_view_moves_each_control_and_shows_what_compute_says():
    view = toolkit.LiveView(w8.EXPLORER)
    for name, values in {"n": (40, 2), "prior_scale": (1.5, 0.1), "sigma": (2.5, 0.5),
                         "prior": ("laplace", "gaussian")}.items():
        for value in values:
            before = view.image.value
            view.set(**{name: value})
            r = w8.compute(**view.params)
            assert view.params[name] == value
            assert view.readouts == w8.readouts(r)
            ax_w, ax_path = view.figure.axes
            shown = (r.w_grid >= r.view[0]) & (r.w_grid <= r.view[1])
            for line, density in zip(ax_w.lines, (r.likelihood, r.prior_density, r.posterior)):
                np.testing.assert_array_equal(line.get_ydata(), density[shown])
            assert ax_w.lines[3].get_xdata()[0] == r.mle and ax_w.lines[4].get_xdata()[0] == r.map
            for j in range(6):
                np.testing.assert_array_equal(ax_path.lines[j].get_ydata(), r.path[:, j])
            assert ax_path.lines[6].get_xdata()[0] == r.lam
            np.testing.assert_array_equal(ax_path.collections[0].get_offsets()[:, 1], r.path_weights)
            assert view.image.value != before


def test_a_reused_figure_draws_exactly_what_a_fresh_one_draws():
    reused = toolkit.new_figure(w8.EXPLORER)
    toolkit.render(w8.EXPLORER, reused, w8.compute(prior="laplace", n=100, prior_scale=2.0))
    r2 = w8.compute(n=3, sigma=2.0)
    assert toolkit.render(w8.EXPLORER, reused, r2) == toolkit.render(w8.EXPLORER, toolkit.new_figure(w8.EXPLORER), r2)
    assert len(reused.axes) == 2 and len(reused.axes[1].lines) == 7
