"""W3 Likelihood versus MSE: fitting a line by least squares is maximum likelihood under
Gaussian noise.

Controls: the slope w and intercept b of a line, the noise standard deviation sigma, and a
switch that lets the model learn sigma. The two left panels show, over a grid of (w, b), the
mean squared error and the mean Gaussian negative log-likelihood of a small fixed data set;
the right panel shows the data, the current line with a band of +-sigma, and the least-squares
line.

Aha: at fixed sigma the mean NLL is MSE / (2 sigma^2) + log sigma + log(2 pi) / 2, an increasing
affine function of the MSE. The two surfaces are the same picture with different numbers on the
colour bar, so they share their minimiser, the least-squares line; sigma only rescales. Learning
sigma as well gives the root mean squared residual of the line: the Gaussian's own estimate of
the noise.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from matplotlib import patheffects
import torch

from d2lcore import likelihood
from d2lcore.explore import toolkit
from d2lcore.explore.toolkit import Explorer, Slider, Toggle, panels, show as _show, validate

CONTROLS = (
    Slider("w", "slope w", -1.0, 4.0, 0.05, 0.5),
    Slider("b", "intercept b", -2.0, 3.0, 0.05, -0.5),
    Slider("sigma", "noise sigma", 0.2, 3.0, 0.05, 1.0),
    Toggle("learn_sigma", "learn sigma (maximum likelihood)", False),
)

GRID = 50  # the surfaces' resolution per axis: coarse keeps each live update fast


def _data(n: int = 24, seed: int = 3) -> tuple[np.ndarray, np.ndarray]:
    """A small fixed data set from y = 1.5 x + 0.5 + N(0, 0.7^2), drawn with a private generator."""
    g = toolkit.generator(seed)
    x = torch.rand(n, generator=g, dtype=torch.float64) * 4 - 2
    y = 1.5 * x + 0.5 + 0.7 * torch.randn(n, generator=g, dtype=torch.float64)
    return x.numpy(), y.numpy()


X, Y = _data()
W_AXIS = np.linspace(CONTROLS[0].min, CONTROLS[0].max, GRID)
B_AXIS = np.linspace(CONTROLS[1].min, CONTROLS[1].max, GRID)
# The MSE surface does not depend on any control: computed once. Rows are b, columns w.
_RESIDUALS = Y[None, None, :] - (W_AXIS[None, :, None] * X[None, None, :] + B_AXIS[:, None, None])
MSE_SURFACE = np.mean(_RESIDUALS**2, axis=-1)
MSE_SURFACE.setflags(write=False)
MSE_LEVELS = np.array([0.8, 2.0, 4.0, 7.0])  # contour levels of the MSE; the NLL's are their images


@dataclass(frozen=True)
class Result:
    x: np.ndarray              # the data
    y: np.ndarray
    w: float                   # the current line
    b: float
    sigma: float               # the noise sigma used (the slider's, or the ML one when learned)
    learn_sigma: bool
    mse: float                 # mean squared residual of the current line
    nll: float                 # mean Gaussian negative log-likelihood at sigma, nats
    rms: float                 # root mean squared residual: the ML sigma for this line
    w_axis: np.ndarray         # grid of slopes (columns of the surfaces)
    b_axis: np.ndarray         # grid of intercepts (rows of the surfaces)
    mse_surface: np.ndarray    # MSE over the grid
    nll_surface: np.ndarray    # mean NLL over the grid at this sigma, nats
    w_star: float              # least-squares line: minimiser of both surfaces
    b_star: float
    nll_star: float            # mean NLL of the least-squares line at this sigma, nats
    mse_levels: np.ndarray     # contour levels of the MSE ...
    nll_levels: np.ndarray     # ... and the same contours in NLL units, nats
    label_b: np.ndarray        # where each contour crosses w = w_star below b_star


def compute(**params) -> Result:
    """Both surfaces, the current line's losses and the least-squares line (see CONTROLS)."""
    p = validate(CONTROLS, params)
    w, b = p["w"], p["b"]
    mse = float(np.mean((Y - (w * X + b)) ** 2))
    rms = float(np.sqrt(mse))
    # The maximum-likelihood sigma for a fixed line: d/dsigma [mse / (2 sigma^2) + log sigma] = 0.
    sigma = rms if p["learn_sigma"] else p["sigma"]
    gaussian = likelihood.get("mse")  # mean NLL = multiplier(sigma) * MSE + constant(sigma)
    multiplier, constant = gaussian.multiplier(sigma=sigma), gaussian.constant(sigma=sigma)
    # Least squares from the normal equations of a line: slope = cov(x, y) / var(x).
    xc, yc = X - X.mean(), Y - Y.mean()
    w_star = float(xc @ yc / (xc @ xc))
    b_star = float(Y.mean() - w_star * X.mean())
    mse_star = float(np.mean((Y - (w_star * X + b_star)) ** 2))
    return Result(
        x=X, y=Y, w=w, b=b, sigma=sigma, learn_sigma=p["learn_sigma"],
        mse=mse, nll=multiplier * mse + constant, rms=rms,
        w_axis=W_AXIS, b_axis=B_AXIS,
        mse_surface=MSE_SURFACE, nll_surface=multiplier * MSE_SURFACE + constant,
        w_star=w_star, b_star=b_star, nll_star=multiplier * mse_star + constant,
        mse_levels=MSE_LEVELS, nll_levels=multiplier * MSE_LEVELS + constant,
        # Along w = w_star the MSE is mse_star + (b - b_star)^2 (the residuals have mean 0).
        label_b=b_star - np.sqrt(MSE_LEVELS - mse_star),
    )


def _surface(ax, r: Result, values: np.ndarray, levels: np.ndarray, title: str) -> None:
    extent = (r.w_axis[0], r.w_axis[-1], r.b_axis[0], r.b_axis[-1])
    ax.imshow(values, origin="lower", extent=extent, aspect="auto", cmap="viridis", interpolation="nearest")
    # Labelled contours: the pictures agree, only the numbers on the contours differ.
    ax.contour(r.w_axis, r.b_axis, values, levels=levels, colors="white", linewidths=0.6)
    for b_at, level in zip(r.label_b, levels):
        # 10 pt with a dark outline: readable at 100 % zoom on the bright and the dark colours
        ax.text(r.w_star, b_at, f"{level:.3g}", color="white", fontsize=10, ha="center", va="center",
                path_effects=[patheffects.withStroke(linewidth=2, foreground="black")])
    ax.plot([r.w], [r.b], "o", color="tab:red", markersize=6)
    ax.plot([r.w_star], [r.b_star], "*", color="white", markeredgecolor="black", markersize=11)
    ax.set(xlabel="slope w", ylabel="intercept b", title=title)
    ax.set_xticks([0, 2, 4])  # few ticks: each tick label costs time on every update
    ax.set_yticks([-2, 0, 2])
    ax.grid(False)


def draw(fig, r: Result) -> None:
    ax_mse, ax_nll, ax_data = panels(fig, 3, left=0.06, right=0.985, wspace=0.5)
    _surface(ax_mse, r, r.mse_surface, r.mse_levels, "MSE (y units²) over (w, b)")
    _surface(ax_nll, r, r.nll_surface, r.nll_levels, f"mean NLL (nats), σ = {r.sigma:.2f}")
    ax_nll.set_ylabel("")
    ax_nll.tick_params(labelleft=False)  # same b axis as its neighbour

    xs = np.array([-2.2, 2.2])
    line = r.w * xs + r.b
    ax_data.fill_between(xs, line - r.sigma, line + r.sigma, color="tab:red", alpha=0.15)
    # One legend for all three panels (legends are slow to draw): the dot and the star in the maps.
    ax_data.plot(xs, line, color="tab:red", label="current line (●)")
    ax_data.plot(xs, r.w_star * xs + r.b_star, "--", color="black", linewidth=1.2, label="least squares (★)")
    ax_data.plot(r.x, r.y, "o", color="tab:blue", markersize=3.5)
    ax_data.set(xlim=(-2.2, 2.2), ylim=(-6.0, 7.0), xlabel="x", ylabel="y",
                title="line ± σ, σ = RMS residual" if r.learn_sigma else "data, line ± σ")
    ax_data.set_xticks([-2, 0, 2])
    ax_data.set_yticks([-5, 0, 5])
    ax_data.legend(loc="upper left", fontsize=9, handlelength=1.5, borderaxespad=0.3)


def readouts(r: Result) -> dict[str, str]:
    return {
        "MSE": f"{r.mse:.4f} (y units²)",
        "mean NLL": f"{r.nll:.4f} nats",
        "sigma used": f"{r.sigma:.4f}" + (" (learned)" if r.learn_sigma else " (slider)"),
        "RMS residual": f"{r.rms:.4f} (y units)",
        "least-squares line": f"w* = {r.w_star:.4f}, b* = {r.b_star:.4f}",
    }


EXPLORER = Explorer("W3 · Likelihood versus MSE", CONTROLS, compute, draw, readouts,
                    frame_control="sigma", figsize=(9.0, 3.3))


def show(**params):
    """Display the explorer: live in a notebook, static when building the book."""
    return _show(EXPLORER, **params)
