"""W5 Sigmoid with MSE versus cross-entropy: why a confidently wrong unit learns under one and
stalls under the other.

A single sigmoid unit outputs sigma(z) for a logit z and is scored against a label y in {0, 1},
either by the squared error (sigma(z) - y)^2 or by the binary cross-entropy -log Bernoulli(y;
sigma(z)). The explorer draws both losses, the size of both gradients with respect to z (log
scale) and their ratio, with the reader's z marked.

Aha: the squared error's gradient carries the factor sigma(z)(1 - sigma(z)), which dies away on
both sides, so a unit that is confidently wrong gets almost no signal to change. The
cross-entropy's gradient is sigma(z) - y: its size tends to 1, not 0, the more wrong the unit is.
The ratio of the two, 1 / (2 sigma(1 - sigma)), does not even depend on the label.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from matplotlib import ticker

from d2lcore import likelihood
from d2lcore.explore.toolkit import Choice, Explorer, Slider, panels, show as _show, validate

Z_MIN, Z_MAX = -10.0, 10.0
GRID_POINTS = 401
# Only a guard for the log axes: in float64 the smallest gradient reachable for |z| <= 10 is
# about 4e-9 (the MSE gradient of a confidently right unit), so this floor never binds here.
LOG_FLOOR = 1e-12

CONTROLS = (
    Slider("z", "logit z", Z_MIN, Z_MAX, 0.1, -4.0),
    Choice("y", "label y", (0, 1), 1),
)


@dataclass(frozen=True)
class Result:
    z: float
    y: int
    sigma: float            # sigma(z), the predicted probability of y = 1
    mse: float              # (sigma - y)^2
    bce: float              # -log Bernoulli(y; logits=z), nats
    grad_mse: float         # d mse / dz (autograd)
    grad_bce: float         # d bce / dz (autograd), nats per unit of z
    ratio: float            # |grad_bce| / |grad_mse|
    grid: np.ndarray        # z values of the curves
    mse_curve: np.ndarray
    bce_curve: np.ndarray
    grad_mse_curve: np.ndarray
    grad_bce_curve: np.ndarray
    ratio_curve: np.ndarray


def _losses_and_gradients(z: torch.Tensor, y: float):
    """Both losses per element of ``z`` and their gradients, from autograd (elements are
    independent, so the gradient of the sum is the per-element gradient)."""
    z = z.detach().clone().requires_grad_(True)
    target = torch.full_like(z, y)
    mse = (torch.sigmoid(z) - target) ** 2
    # The cross-entropy is read from the registry: minus the Bernoulli log-likelihood.
    bce = -likelihood.get("bce").distribution(z).log_prob(target)
    (grad_mse,) = torch.autograd.grad(mse.sum(), z)
    (grad_bce,) = torch.autograd.grad(bce.sum(), z)
    return mse.detach(), bce.detach(), grad_mse, grad_bce


def _ratio(grad_bce: torch.Tensor, grad_mse: torch.Tensor) -> torch.Tensor:
    return grad_bce.abs() / grad_mse.abs().clamp_min(LOG_FLOOR)


def compute(**params) -> Result:
    """Losses, gradients and their ratio at the chosen logit and along the whole z axis."""
    p = validate(CONTROLS, params)
    z, y = p["z"], p["y"]
    # float64 keeps sigma(z) strictly inside (0, 1) for |z| <= 10, so every log below is finite.
    point = torch.tensor([z], dtype=torch.float64)
    mse, bce, g_mse, g_bce = _losses_and_gradients(point, y)
    grid = torch.linspace(Z_MIN, Z_MAX, GRID_POINTS, dtype=torch.float64)
    mse_c, bce_c, g_mse_c, g_bce_c = _losses_and_gradients(grid, y)
    return Result(
        z=z, y=y, sigma=float(torch.sigmoid(point)[0]),
        mse=float(mse[0]), bce=float(bce[0]), grad_mse=float(g_mse[0]), grad_bce=float(g_bce[0]),
        ratio=float(_ratio(g_bce, g_mse)[0]),
        grid=grid.numpy(), mse_curve=mse_c.numpy(), bce_curve=bce_c.numpy(),
        grad_mse_curve=g_mse_c.numpy(), grad_bce_curve=g_bce_c.numpy(),
        ratio_curve=_ratio(g_bce_c, g_mse_c).numpy(),
    )


MSE_COLOR, BCE_COLOR, RATIO_COLOR = "tab:blue", "tab:orange", "tab:green"
Z_TICKS = (-10, -5, 0, 5, 10)
# A fixed title height: matplotlib's automatic one measures every tick label again each draw.
TITLE_Y = 1.02


def _decade(value, _position) -> str:
    return f"{value:.0f}" if value >= 1 else f"1e{round(np.log10(value)):d}"


def _log_y(ax) -> None:
    # A few labelled decades in plain text and no minor ticks: minor log ticks and mathtext
    # labels (10^-4) would double the cost of a live update.
    ax.set_yscale("log")
    ax.yaxis.set_major_locator(ticker.LogLocator(base=10, numticks=6))
    ax.yaxis.set_major_formatter(ticker.FuncFormatter(_decade))
    ax.yaxis.set_minor_locator(ticker.NullLocator())


def draw(fig, r: Result) -> None:
    # The ratio shares the gradients' log axis, where it is exactly the vertical gap between the
    # two gradient curves; a third panel would only repeat that.
    ax_l, ax_g = panels(fig, 2, width_ratios=(1.0, 1.25))
    ax_l.plot(r.grid, r.mse_curve, color=MSE_COLOR, label="MSE (σ - y)²")
    ax_l.plot(r.grid, r.bce_curve, color=BCE_COLOR, label="BCE -log p(y) (nats)")
    ax_l.plot([r.z, r.z], [r.mse, r.bce], "o", color="black", markersize=4)
    ax_l.axvline(r.z, color="gray", linewidth=0.8)
    ax_l.set(xlabel="logit z", ylabel="loss", xticks=Z_TICKS)
    ax_l.set_title(f"losses of σ(z) for label y = {r.y}", y=TITLE_Y)
    ax_l.legend(loc="upper center", fontsize=8)

    # Colours as in the losses panel; one legend only (a legend costs several ms an update), the
    # ratio labelled in place.
    ax_g.plot(r.grid, np.maximum(np.abs(r.grad_mse_curve), LOG_FLOOR), color=MSE_COLOR)
    ax_g.plot(r.grid, np.maximum(np.abs(r.grad_bce_curve), LOG_FLOOR), color=BCE_COLOR)
    ax_g.plot(r.grid, r.ratio_curve, "--", color=RATIO_COLOR)
    ax_g.text(0.0, 15.0, "ratio BCE / MSE", color=RATIO_COLOR, ha="center", va="bottom", fontsize=8)
    ax_g.plot([r.z, r.z, r.z], [max(abs(r.grad_mse), LOG_FLOOR), max(abs(r.grad_bce), LOG_FLOOR), r.ratio], "o",
              color="black", markersize=4)
    ax_g.axvline(r.z, color="gray", linewidth=0.8)
    _log_y(ax_g)
    ax_g.set(xlabel="logit z", ylabel="|d loss / dz|, ratio (log scale)", xticks=Z_TICKS)
    ax_g.set_title(f"gradient sizes; ratio = 1/(2σ(1-σ)) = {r.ratio:.1f}", y=TITLE_Y)


def readouts(r: Result) -> dict[str, str]:
    return {
        "σ(z)": f"{r.sigma:.6f}",
        "MSE (σ - y)²": f"{r.mse:.6f}",
        "BCE -log p(y)": f"{r.bce:.6f} nats",
        "d MSE / dz": f"{r.grad_mse:+.3e}",
        "d BCE / dz": f"{r.grad_bce:+.3e} nats",
        "ratio |BCE grad| / |MSE grad|": f"{r.ratio:.1f}",
    }


EXPLORER = Explorer("W5 · Sigmoid with MSE versus cross-entropy", CONTROLS, compute, draw, readouts,
                    frame_control="z", figsize=(9.0, 3.3))


def show(**params):
    """Display the explorer: live in a notebook, static when building the book."""
    return _show(EXPLORER, **params)
