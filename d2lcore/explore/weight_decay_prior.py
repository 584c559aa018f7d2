"""W8 Weight decay is a prior: L2 is a Gaussian prior on the weights, L1 a Laplace prior.

Controls: the prior (Gaussian or Laplace), its scale, the noise sigma, and the number of data
points n. Left: for a one-weight model y = w x + N(0, sigma^2), the likelihood of w, the prior
and the posterior, each normalised to integrate to 1 on a grid, with the maximum-likelihood
estimate (MLE) and the maximum a posteriori estimate (MAP) marked. Right: the MAP weights of a
six-feature problem, three of whose true weights are zero, against lambda: ridge for the
Gaussian prior, lasso for the Laplace prior, with the current lambda marked.

Convention. With n points, minus the log posterior times sigma^2 is, up to a constant,

    Gaussian prior N(0, tau^2):   1/2 sum_i (y_i - w x_i)^2 + lambda/2 w^2,   lambda = sigma^2 / tau^2
    Laplace prior, scale b:           1/2 sum_i (y_i - w x_i)^2 + lambda |w|,     lambda = sigma^2 / b

(the same for a weight vector, with ||w||^2 and ||w||_1). The data term is a SUM with a half.
Written as torch's mean squared error, F.mse_loss = (1/n) sum (y - w x)^2, the Gaussian case is
F.mse_loss + (lambda/n) w^2, which is what ``SGD(weight_decay=2 lambda / n)`` minimises on
F.mse_loss. The six-feature problem's data are fixed (noise standard deviation 1); only the
marked lambda moves on its path.

Aha: the prior pulls the MAP from the MLE towards 0; more data, less pull; the Laplace prior's
kink at 0 sets weights exactly to zero, the Gaussian prior only shrinks them.
"""
from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np
import torch
from matplotlib.ticker import MaxNLocator, NullLocator

from d2lcore import likelihood
from d2lcore.explore import toolkit
from d2lcore.explore.toolkit import Choice, Explorer, Slider, panels, show as _show, validate

CONTROLS = (
    Choice("prior", "prior on the weights", ("gaussian", "laplace"), "gaussian"),
    Slider("prior_scale", "prior scale (Gaussian tau, Laplace b)", 0.05, 3.0, 0.05, 0.3),
    Slider("sigma", "noise sigma", 0.2, 3.0, 0.1, 1.0),
    Slider("n", "number of points n", 1, 100, 1, 5, integer=True),
)

W_TRUE = 1.5
W_GRID = np.linspace(-3.0, 5.0, 4001)  # fine enough for the narrowest posterior (sd ~ 0.02)
PATH_W_TRUE = np.array([2.0, -1.5, 0.0, 0.0, 1.0, 0.0])
PATH_LAMBDAS = np.logspace(-3, 4, 71)  # covers every lambda the sliders can reach


def _pool(count: int = 100, seed: int = 8) -> tuple[np.ndarray, np.ndarray]:
    """The 1-D data pool: x and standard-normal noise, from a private generator (first n are used)."""
    g = toolkit.generator(seed)
    return (torch.randn(count, generator=g, dtype=torch.float64).numpy(),
            torch.randn(count, generator=g, dtype=torch.float64).numpy())


def _path_data(rows: int = 40, seed: int = 11) -> tuple[np.ndarray, np.ndarray]:
    g = toolkit.generator(seed)
    X = torch.randn(rows, len(PATH_W_TRUE), generator=g, dtype=torch.float64).numpy()
    return X, X @ PATH_W_TRUE + torch.randn(rows, generator=g, dtype=torch.float64).numpy()


X_POOL, NOISE_POOL = _pool()
PATH_X, PATH_Y = _path_data()
GRAM, CORR = PATH_X.T @ PATH_X, PATH_X.T @ PATH_Y  # the sufficient statistics of 1/2 ||y - X w||^2


def soft_threshold(v, t):
    """argmin_w 1/2 (w - v)^2 + t |w|: move v towards 0 by t, stopping exactly at 0."""
    return np.sign(v) * np.maximum(np.abs(v) - t, 0.0) + 0.0  # + 0.0 turns -0.0 into 0.0


def ridge(lam: float) -> np.ndarray:
    """argmin 1/2 ||y - X w||^2 + lam/2 ||w||^2 for the six-feature problem."""
    return np.linalg.solve(GRAM + lam * np.eye(len(CORR)), CORR)


def lasso(lam: float, start: np.ndarray | None = None, tol: float = 1e-13) -> np.ndarray:
    """argmin 1/2 ||y - X w||^2 + lam ||w||_1 by cyclic coordinate descent: each coordinate's
    exact minimiser, given the others, is a soft-thresholded least-squares value."""
    w = np.zeros(len(CORR)) if start is None else start.copy()
    for _ in range(10_000):
        largest = 0.0
        for j in range(len(w)):
            partial = CORR[j] - GRAM[j] @ w + GRAM[j, j] * w[j]  # correlation with the rest removed
            new = soft_threshold(partial, lam) / GRAM[j, j]
            largest = max(largest, abs(new - w[j]))
            w[j] = new
        if largest < tol:
            break
    return w


@functools.cache
def _path(prior: str) -> np.ndarray:
    """MAP weights along PATH_LAMBDAS (rows), computed once per prior; the lasso path is
    traced from the largest lambda down, each solution warm-starting the next."""
    if prior == "gaussian":
        out = np.array([ridge(lam) for lam in PATH_LAMBDAS])
    else:
        out, w = np.zeros((len(PATH_LAMBDAS), len(CORR))), None
        for i in range(len(PATH_LAMBDAS) - 1, -1, -1):
            w = out[i] = lasso(PATH_LAMBDAS[i], w)
    out.setflags(write=False)
    return out


def _normalised(log_density: np.ndarray) -> np.ndarray:
    """exp(log_density) scaled to integrate to 1 over W_GRID (trapezoid rule), without overflow."""
    d = np.exp(log_density - log_density.max())
    return d / np.trapezoid(d, W_GRID)


@dataclass(frozen=True)
class Result:
    prior: str
    prior_scale: float
    sigma: float
    n: int
    w_grid: np.ndarray         # values of the weight
    likelihood: np.ndarray     # p(data | w), normalised over w
    prior_density: np.ndarray  # p(w)
    posterior: np.ndarray      # p(w | data)
    mle: float
    map: float
    lam: float                 # sigma^2 / tau^2 (Gaussian) or sigma^2 / b (Laplace)
    view: tuple[float, float]  # the range of w worth showing
    path_lambdas: np.ndarray   # the regularisation path of the six-feature problem
    path: np.ndarray           # (lambdas, 6) MAP weights
    path_weights: np.ndarray   # the six MAP weights at the current lambda


def compute(**params) -> Result:
    """Likelihood, prior, posterior and the estimates for the one-weight model; the path."""
    p = validate(CONTROLS, params)
    prior, scale, sigma, n = p["prior"], p["prior_scale"], p["sigma"], p["n"]
    x, y = X_POOL[:n], W_TRUE * X_POOL[:n] + sigma * NOISE_POOL[:n]
    sxx, sxy, syy = x @ x, x @ y, y @ y
    mle = sxy / sxx
    # Minus the log likelihood of w: n times the mean Gaussian NLL, read from the registry.
    mse = (syy - 2 * W_GRID * sxy + W_GRID**2 * sxx) / n
    log_lik = -n * likelihood.get("mse").nll_from_loss(mse, sigma=sigma)
    # The prior is the distribution behind a loss: the Gaussian behind MSE, the Laplace behind L1.
    zero = torch.zeros((), dtype=torch.float64)
    grid = torch.from_numpy(W_GRID)
    if prior == "gaussian":
        log_prior = likelihood.get("mse").distribution(zero, sigma=scale).log_prob(grid).numpy()
        lam = sigma**2 / scale**2
        w_map = sxy / (sxx + lam)
        path_weights = ridge(lam)
    else:
        log_prior = likelihood.get("l1").distribution(zero, b=scale).log_prob(grid).numpy()
        lam = sigma**2 / scale
        w_map = float(soft_threshold(sxy, lam) / sxx)
        nearest = int(np.argmin(np.abs(np.log(PATH_LAMBDAS / lam))))
        path_weights = lasso(lam, _path("laplace")[nearest])
    lik, pri, post = _normalised(log_lik), _normalised(log_prior), _normalised(log_lik + log_prior)
    # Show where the likelihood or the posterior is above 1% of its peak, the prior's scale on
    # both sides of 0, and the MLE.
    seen = W_GRID[(lik > 1e-2 * lik.max()) | (post > 1e-2 * post.max())]
    lo, hi = min(seen.min(), -scale, mle), max(seen.max(), scale, mle)
    pad = 0.05 * (hi - lo)
    return Result(
        prior=prior, prior_scale=scale, sigma=sigma, n=n, w_grid=W_GRID,
        likelihood=lik, prior_density=pri, posterior=post,
        mle=float(mle), map=float(w_map), lam=float(lam),
        view=(float(max(lo - pad, W_GRID[0])), float(min(hi + pad, W_GRID[-1]))),
        path_lambdas=PATH_LAMBDAS, path=_path(prior), path_weights=path_weights,
    )


def draw(fig, r: Result) -> None:
    ax_w, ax_path = panels(fig, 2, left=0.07, right=0.97, wspace=0.25)
    shown = (r.w_grid >= r.view[0]) & (r.w_grid <= r.view[1])
    w = r.w_grid[shown]
    ax_w.plot(w, r.likelihood[shown], color="tab:blue", label="likelihood")
    ax_w.plot(w, r.prior_density[shown], color="tab:green", label=f"{r.prior} prior")
    ax_w.plot(w, r.posterior[shown], color="tab:red", label="posterior")
    top = max(r.likelihood[shown].max(), r.prior_density[shown].max(), r.posterior[shown].max())
    ax_w.axvline(r.mle, color="tab:blue", linestyle=":", linewidth=1.2)
    ax_w.axvline(r.map, color="tab:red", linestyle="--", linewidth=1.2)
    ax_w.set(xlim=r.view, ylim=(0, 1.25 * top), xlabel="weight w", ylabel="density (per unit of w)",
             title=f"n = {r.n}: MLE {r.mle:.2f} (dotted), MAP {r.map:.2f} (dashed)")
    ax_w.legend(loc="upper center", fontsize=7, ncol=3, handlelength=1.2, columnspacing=1.0)  # in the headroom
    ax_w.xaxis.set_major_locator(MaxNLocator(5))  # every tick costs time on each update
    ax_w.yaxis.set_major_locator(MaxNLocator(4))

    colors = ("tab:blue", "tab:orange", "tab:green", "tab:red", "tab:purple", "tab:brown")
    for j, color in enumerate(colors):
        ax_path.plot(r.path_lambdas, r.path[:, j], color=color, linewidth=1.4)
    ax_path.axvline(r.lam, color="black", linewidth=1.0)
    ax_path.scatter(np.full(len(colors), r.lam), r.path_weights, c=colors, s=14, zorder=3)
    ax_path.set_xscale("log")
    ax_path.set_xticks([1e-2, 1e0, 1e2, 1e4])
    ax_path.xaxis.set_minor_locator(NullLocator())  # 50 minor ticks would double the drawing time
    ax_path.yaxis.set_major_locator(MaxNLocator(4))
    zeros = int(np.sum(r.path_weights == 0))
    kind = "ridge (Gaussian prior)" if r.prior == "gaussian" else "lasso (Laplace prior)"
    ax_path.set(xlim=(r.path_lambdas[0], r.path_lambdas[-1]), xlabel="λ (log scale)", ylabel="MAP weight",
                title=f"{kind}: {zeros} of 6 weights exactly 0")


def readouts(r: Result) -> dict[str, str]:
    if r.prior == "gaussian":
        lam = f"{r.lam:.4g} = σ²/τ² (loss ½Σ(y - wx)² + λ/2·w²)"
    else:
        lam = f"{r.lam:.4g} = σ²/b (loss ½Σ(y - wx)² + λ·|w|)"
    return {
        "MLE": f"{r.mle:.4f}",
        "MAP": f"{r.map:.4f}",
        "lambda": lam,
        "MAP weights of the path at λ": ", ".join(f"{v:+.3f}" for v in r.path_weights),
    }


EXPLORER = Explorer("W8 · Weight decay is a prior", CONTROLS, compute, draw, readouts,
                    frame_control="n", figsize=(9.0, 3.3))


def show(**params):
    """Display the explorer: live in a notebook, static when building the book."""
    return _show(EXPLORER, **params)
