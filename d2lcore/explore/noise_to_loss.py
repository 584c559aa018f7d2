"""W1 Noise model to loss: pick a noise density for the residual and get its loss for free.

Controls: the noise family (Gaussian, Laplace, Huber, Student-t), its scale, the Huber delta,
the Student-t degrees of freedom, and a prediction for a small fixed data set (seven points
and one outlier). Three panels: the density p(r) of the residual r = y - prediction; -log p(r)
with the registry's torch loss (times its multiplier) drawn on top once the constant is
removed; and the total negative log-likelihood of the data against the prediction, with its
minimiser marked (the mean, a median, the Huber M-estimate, the Student-t estimate).

Aha: a loss is minus a log-density, up to a scale and a constant; the constant never moves
the minimiser; the tails decide how hard the outlier pulls the estimate.

The scale applies to the Gaussian (sigma), Laplace (b) and Student-t (scale). The registry's
Huber pair has unit scale, and so does the Huber model here: its delta alone says where the
Gaussian core ends and the exponential tails begin.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from matplotlib.ticker import MaxNLocator
from scipy.optimize import minimize_scalar

from d2lcore import likelihood
from d2lcore.explore.toolkit import Choice, Explorer, Slider, panels, show as _show, validate

FAMILIES = ("gaussian", "laplace", "huber", "student_t")
LOSS_OF = {"gaussian": "mse", "laplace": "l1", "huber": "huber", "student_t": "student_t"}
TITLE_OF = {"gaussian": "Gaussian", "laplace": "Laplace", "huber": "Huber", "student_t": "Student-t"}
ESTIMATE_OF = {"gaussian": "mean", "laplace": "median", "huber": "Huber M-estimate",
               "student_t": "Student-t estimate"}

CONTROLS = (
    Choice("family", "noise family", FAMILIES, "gaussian"),
    Slider("scale", "scale (sigma, b or s; not Huber)", 0.3, 3.0, 0.1, 1.0),
    Slider("delta", "Huber delta", 0.2, 5.0, 0.1, 1.0),
    Slider("df", "Student-t degrees of freedom", 1.0, 30.0, 0.5, 3.0),
    Slider("prediction", "prediction", -3.0, 3.0, 0.05, 0.5),
)

# Seven well-behaved points and one outlier, fixed once (seeded) so every frame shows the same data.
DATA = np.sort(np.concatenate([np.random.default_rng(4).normal(-0.8, 0.6, 7), [2.6]]))
RESIDUALS = np.linspace(-6.0, 6.0, 241)   # covers every data point minus every prediction
PREDICTIONS = np.linspace(-3.0, 3.0, 121)  # the prediction slider's range and step (0.05)


@dataclass(frozen=True)
class Result:
    family: str
    loss_name: str             # registry name of the matching loss
    multiplier: float          # NLL = multiplier * loss + constant (per point, nats)
    constant: float            # nats
    residuals: np.ndarray      # r grid
    density: np.ndarray        # p(r)
    nll_r: np.ndarray          # -log p(r), nats, from the distribution
    loss_r: np.ndarray         # the registry's torch loss of r, one point at a time
    data: np.ndarray
    prediction: float
    data_nll: np.ndarray       # -log p(y_i - prediction) for each data point, nats
    total_nll: float           # their sum, nats
    predictions: np.ndarray    # prediction grid
    total_nll_grid: np.ndarray  # sum_i -log p(y_i - m) over the grid, nats
    total_loss_grid: np.ndarray  # sum_i loss(y_i - m): no multiplier, no constant
    minimiser: float           # the family's estimate (midpoint of the interval for an even median)
    minimiser_low: float       # the set of minimisers is [low, high]; a point unless Laplace
    minimiser_high: float      # with an even count
    minimiser_nll: float       # total NLL at the minimiser, nats
    mean: float
    median_low: float
    median_high: float


def _loss_params(p: dict) -> dict:
    return {"gaussian": {"sigma": p["scale"]}, "laplace": {"b": p["scale"]},
            "huber": {"delta": p["delta"]}, "student_t": {"df": p["df"], "scale": p["scale"]}}[p["family"]]


def _nll(pair, params, prediction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """-log p(target | prediction), elementwise, from the registry's distribution."""
    return -pair.distribution(prediction, **params).log_prob(target)


def _loss(pair, params, prediction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """The registry's torch loss for each pair on its own: torch losses average over a batch,
    so a one-element batch is the per-point loss; vmap runs all of them at once."""
    def one(p, t):
        return pair.loss(p.reshape(1), t.reshape(1), **params)
    return torch.func.vmap(one)(prediction, target)


def compute(**params) -> Result:
    """Density, NLL, loss and the data's minimiser for the given controls (see CONTROLS)."""
    p = validate(CONTROLS, params)
    family = p["family"]
    pair, lp = likelihood.get(LOSS_OF[family]), _loss_params(p)
    f64 = dict(dtype=torch.float64)

    r = torch.tensor(RESIDUALS, **f64)
    zero = torch.zeros_like(r)
    nll_r = _nll(pair, lp, zero, r)
    loss_r = _loss(pair, lp, zero, r)

    data = torch.tensor(DATA, **f64)
    grid = torch.tensor(PREDICTIONS, **f64)
    pred_flat = grid[:, None].expand(-1, len(DATA)).reshape(-1)
    data_flat = data[None, :].expand(len(PREDICTIONS), -1).reshape(-1)
    total_nll_grid = _nll(pair, lp, pred_flat, data_flat).reshape(len(PREDICTIONS), -1).sum(1)
    total_loss_grid = _loss(pair, lp, pred_flat, data_flat).reshape(len(PREDICTIONS), -1).sum(1)

    def total(m: float) -> float:
        return float(_nll(pair, lp, torch.full_like(data, m), data).sum())

    n = len(DATA)
    mean = float(DATA.mean())
    median_low, median_high = (float(DATA[(n - 1) // 2]), float(DATA[n // 2]))
    if family == "gaussian":
        low = high = mean
    elif family == "laplace":
        low, high = median_low, median_high  # every point in between minimises the L1 loss
    else:
        # Grid search for the global minimum (Student-t can have several), then refine in the
        # two grid cells around it.
        i = int(torch.argmin(total_nll_grid))
        lo, hi = PREDICTIONS[max(i - 1, 0)], PREDICTIONS[min(i + 1, len(PREDICTIONS) - 1)]
        low = high = float(minimize_scalar(total, bounds=(lo, hi), method="bounded",
                                           options={"xatol": 1e-10}).x)
    minimiser = 0.5 * (low + high)

    data_nll = _nll(pair, lp, torch.full_like(data, p["prediction"]), data)
    return Result(
        family=family, loss_name=pair.name,
        multiplier=pair.multiplier(**lp), constant=pair.constant(**lp),
        residuals=RESIDUALS, density=torch.exp(-nll_r).numpy(), nll_r=nll_r.numpy(), loss_r=loss_r.numpy(),
        data=DATA, prediction=p["prediction"], data_nll=data_nll.numpy(), total_nll=float(data_nll.sum()),
        predictions=PREDICTIONS, total_nll_grid=total_nll_grid.numpy(), total_loss_grid=total_loss_grid.numpy(),
        minimiser=minimiser, minimiser_low=low, minimiser_high=high, minimiser_nll=total(minimiser),
        mean=mean, median_low=median_low, median_high=median_high,
    )


def _minimiser_text(r: Result) -> str:
    if r.minimiser_low != r.minimiser_high:
        return f"median: any value in [{r.minimiser_low:.3f}, {r.minimiser_high:.3f}]"
    return f"{ESTIMATE_OF[r.family]} = {r.minimiser:.3f}"


def _few_ticks(*axes) -> None:
    # Every tick label is a text to lay out on each update; four per axis keep updates fast.
    for ax in axes:
        ax.xaxis.set_major_locator(MaxNLocator(4))
        ax.yaxis.set_major_locator(MaxNLocator(4))


def draw(fig, r: Result) -> None:
    ax_d, ax_n, ax_t = panels(fig, 3, left=0.075, wspace=0.36)
    _few_ticks(ax_d, ax_n, ax_t)

    ax_d.plot(r.residuals, r.density, color="tab:blue")
    ax_d.fill_between(r.residuals, r.density, color="tab:blue", alpha=0.15, linewidth=0)
    ax_d.set(xlim=(r.residuals[0], r.residuals[-1]), xlabel="residual r = y - prediction", ylabel="density p(r)",
             title=f"{TITLE_OF[r.family]} noise density", ylim=(0, 1.08 * r.density.max()))

    # -log p(r), then the same with the constant removed, then the torch loss times its multiplier.
    ax_n.plot(r.residuals, r.nll_r, color="0.6", linewidth=1)
    ax_n.plot(r.residuals, r.nll_r - r.constant, color="tab:blue", linewidth=3, alpha=0.6)
    ax_n.plot(r.residuals, r.multiplier * r.loss_r, color="black", linestyle="--", linewidth=1.2)
    ax_n.plot(r.data - r.prediction, r.data_nll, "o", color="tab:orange", markersize=4)
    # One text instead of a legend: a legend costs several texts and a layout pass per update.
    ax_n.text(0.5, 0.97, f"grey: -log p(r)\nblue: -log p(r) - {r.constant:.3f}\n"
              f"dashed: {r.multiplier:.3g} x torch {r.loss_name}", transform=ax_n.transAxes,
              ha="center", va="top", fontsize=7, linespacing=1.3)
    bottom = min(0.0, float(r.nll_r.min())) - 0.3
    ax_n.set(xlim=(r.residuals[0], r.residuals[-1]), ylim=(bottom, max(0.0, r.constant) + 8),
             xlabel="residual r  (dots: the data)", ylabel="nats", title="-log p(r) = loss + constant")

    ax_t.plot(r.predictions, r.total_nll_grid, color="tab:blue")
    lo = float(r.total_nll_grid.min())
    hi = max(min(float(r.total_nll_grid.max()), lo + 40), r.total_nll)
    pad = 0.06 * (hi - lo)
    ax_t.set(xlim=(r.predictions[0], r.predictions[-1]), ylim=(lo - pad, hi + 2 * pad))
    ax_t.axvline(r.mean, color="0.5", linewidth=0.8, linestyle=":")
    ax_t.axvspan(r.median_low, r.median_high, color="0.6", alpha=0.3, linewidth=0)
    if r.minimiser_low != r.minimiser_high:
        ax_t.axvspan(r.minimiser_low, r.minimiser_high, color="tab:red", alpha=0.5, linewidth=0)
    else:
        ax_t.axvline(r.minimiser, color="tab:red", linewidth=1.5)
    ax_t.text(0.5, 0.97, _minimiser_text(r), transform=ax_t.transAxes, ha="center", va="top",
              fontsize=8, color="tab:red",
              bbox={"facecolor": "white", "edgecolor": "none", "alpha": 0.85, "pad": 1})
    ax_t.plot([r.prediction], [r.total_nll], "o", color="tab:orange", markersize=6)
    ax_t.plot(r.data, np.full_like(r.data, lo - 0.5 * pad), "|", color="black", markersize=8)
    ax_t.set(xlabel="prediction  (grey: mean, median)", ylabel="sum of -log p(y_i - prediction)  (nats)",
             title=f"total NLL: {len(r.data)} points, 1 outlier")


def readouts(r: Result) -> dict[str, str]:
    return {
        "constant c": f"{r.constant:.4f} nats",
        "multiplier": f"{r.multiplier:.4g} nats per unit of torch {r.loss_name} loss",
        "total NLL at the prediction": f"{r.total_nll:.4f} nats",
        "minimiser": _minimiser_text(r),
    }


EXPLORER = Explorer("W1 · Noise model to loss", CONTROLS, compute, draw, readouts,
                    frame_control="family", figsize=(9.0, 3.3))


def show(**params):
    """Display the explorer: live in a notebook, static when building the book."""
    return _show(EXPLORER, **params)
