"""W19 A network that predicts a distribution: the output layer holds a distribution's parameters.

Two synthetic data sets on x in [-3, 3], each N_TRAIN training and N_HELDOUT held-out points
drawn from a private generator:

    one branch     y = sin(2x) + sigma(x) eps,       sigma(x) = 0.05 + 0.1 x^2 (noise grows with |x|)
    two branches   y = +-(1 + x^2 / 4) + 0.1 eps,    the sign a fair coin (two answers for each x)

and four output heads on the same small network (1 -> 32 -> 32 -> k, tanh), each trained by
full-batch Adam on its own negative log-likelihood (section 4.3):

    fixed σ        k = 1: the mean; MSE, then sigma = the RMS training residual (its MLE)
    learned σ(x)   k = 2: mean and log-variance; Gaussian NLL (GaussianNLLLoss, full=True)
    Laplace        k = 2: median and log-scale; |y - mu| / b + log 2b
    mixture        k = 6: two logits, two means, two log-scales; MixtureSameFamily NLL, with
                   the means' output biases started at -1 and +1 so that the components
                   start apart (symmetry breaking, section 4.5)

A model is trained once, deterministically, the first time its (data, head) pair is asked for
(about half a second), and cached with its snapshots after STEPS Adam steps: a live update
then only looks results up and draws. At each snapshot the held-out negative log-likelihood
(nats per point) and the coverage of the central 50 % and 90 % predictive intervals are
measured on the held-out points; the intervals of a mixture come from its CDF by bisection.

Aha: the output layer holds a distribution's parameters; a learned sigma(x) gives intervals
that are honest at every x, a fixed sigma only on average; a mixture can hold two answers where
a mean falls between them, where no observation lies.
"""
from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from matplotlib.ticker import MaxNLocator
from torch import nn
from torch.distributions import Categorical, Laplace, MixtureSameFamily, Normal

from d2lcore.explore import toolkit
from d2lcore.explore.toolkit import Choice, Explorer, Slider, panels, show as _show, validate

DATASETS = ("one branch", "two branches")
HEADS = ("fixed σ", "learned σ(x)", "Laplace", "mixture")
OUTPUTS = {"fixed σ": 1, "learned σ(x)": 2, "Laplace": 2, "mixture": 6}
STEPS = (0, 25, 50, 100, 200, 400, 800)
N_TRAIN, N_HELDOUT, WIDTH, LEARNING_RATE = 400, 1000, 32, 5e-3
X_RANGE = (-3.0, 3.0)
GRID = np.linspace(*X_RANGE, 121)
LEVELS = (0.05, 0.25, 0.75, 0.95)  # the central 90 % and 50 % intervals
SEEDS = {"one branch": 31, "two branches": 32, "network": 33}

CONTROLS = (
    Choice("data", "data", DATASETS, "one branch"),
    Choice("head", "output head", HEADS, "learned σ(x)"),
    Slider("snapshot", f"training snapshot (0 to {len(STEPS) - 1})", 0, len(STEPS) - 1, 1, len(STEPS) - 1,
           integer=True),
)


def noise_sd(x):
    return 0.05 + 0.1 * x**2


def branch(x):
    return 1 + x**2 / 4


@functools.cache
def dataset(name: str) -> tuple[tuple[torch.Tensor, torch.Tensor], tuple[torch.Tensor, torch.Tensor]]:
    """((x, y) training, (x, y) held out), each (count, 1) float32, from a private generator."""
    g = toolkit.generator(SEEDS[name])
    count = N_TRAIN + N_HELDOUT
    x = X_RANGE[0] + (X_RANGE[1] - X_RANGE[0]) * torch.rand(count, 1, generator=g)
    eps = torch.randn(count, 1, generator=g)
    if name == "one branch":
        y = torch.sin(2 * x) + noise_sd(x) * eps
    else:
        sign = torch.where(torch.rand(count, 1, generator=g) < 0.5, -1.0, 1.0)
        y = sign * branch(x) + 0.1 * eps
    return (x[:N_TRAIN], y[:N_TRAIN]), (x[N_TRAIN:], y[N_TRAIN:])


def network(head: str) -> nn.Sequential:
    """The shared architecture, initialised as nn.Linear would but from a private generator."""
    g = toolkit.generator(SEEDS["network"])
    sizes = (1, WIDTH, WIDTH, OUTPUTS[head])
    linears = [torch.nn.utils.skip_init(nn.Linear, a, b) for a, b in zip(sizes, sizes[1:])]
    for layer in linears:  # U(+-1/sqrt(fan_in)), nn.Linear's own default
        bound = 1 / math.sqrt(layer.in_features)
        nn.init.uniform_(layer.weight, -bound, bound, generator=g)
        nn.init.uniform_(layer.bias, -bound, bound, generator=g)
    if head == "mixture":
        with torch.no_grad():
            linears[-1].bias[2:4] = torch.tensor([-1.0, 1.0])
    return nn.Sequential(linears[0], nn.Tanh(), linears[1], nn.Tanh(), linears[2])


def distribution(head: str, out: torch.Tensor, sigma: float | None = None):
    """The predicted distribution of y for each row of the network's output (batch shape (N,))."""
    if head == "fixed σ":
        return Normal(out[:, 0], sigma, validate_args=False)
    if head == "learned σ(x)":
        return Normal(out[:, 0], (0.5 * out[:, 1]).exp(), validate_args=False)
    if head == "Laplace":
        return Laplace(out[:, 0], out[:, 1].exp(), validate_args=False)
    logits, means, log_scales = out.split(2, dim=1)                       # (N, 2) each
    return MixtureSameFamily(Categorical(logits=logits, validate_args=False),
                             Normal(means, log_scales.exp(), validate_args=False), validate_args=False)


def loss(head: str, out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """The training objective: each head's mean negative log-likelihood (MSE for fixed σ)."""
    if head == "fixed σ":
        return F.mse_loss(out, y)
    if head == "learned σ(x)":
        return F.gaussian_nll_loss(out[:, :1], y, out[:, 1:].exp(), full=True)
    if head == "Laplace":
        return ((y - out[:, :1]).abs() / out[:, 1:].exp() + out[:, 1:] + math.log(2)).mean()
    return -distribution(head, out).log_prob(y[:, 0]).mean()


def quantiles(dist, levels=LEVELS, iterations: int = 60) -> torch.Tensor:
    """(len(levels), N) quantiles: the inverse CDF where torch has one, bisection for a mixture."""
    q = torch.tensor(levels, dtype=torch.float64)[:, None]
    if not isinstance(dist, MixtureSameFamily):
        return dist.icdf(q.expand(len(levels), *dist.batch_shape))
    loc, scale = dist.component_distribution.loc, dist.component_distribution.scale
    lo = (loc - 12 * scale).min(dim=1).values.expand(len(levels), -1).clone()   # (levels, N)
    hi = (loc + 12 * scale).max(dim=1).values.expand(len(levels), -1).clone()
    for _ in range(iterations):  # 2^-60 of the bracket: exact to float64 rounding
        mid = (lo + hi) / 2
        below = dist.cdf(mid) < q
        lo, hi = torch.where(below, mid, lo), torch.where(below, hi, mid)
    return (lo + hi) / 2


@dataclass(frozen=True)
class Snapshot:
    step: int
    mean: np.ndarray          # (grid,) the predicted mean (for a mixture: the mixture's mean)
    bounds: np.ndarray        # (4, grid) quantiles at LEVELS
    weights: np.ndarray       # (grid, 2) mixture weights; (0, 2) for the other heads
    comp_means: np.ndarray    # (grid, 2)
    comp_sds: np.ndarray      # (grid, 2)
    spread: np.ndarray        # (grid,) sigma(x), b(x) or the mixture's standard deviation
    nll: float                # held-out mean negative log-likelihood, nats per point
    coverage90: float         # fraction of held-out y inside the central 90 % interval
    coverage50: float


def _evaluate(head: str, net: nn.Module, data: str, step: int) -> Snapshot:
    (x, y), (xh, yh) = dataset(data)
    with torch.no_grad():
        sigma = float((net(x) - y).pow(2).mean().sqrt()) if head == "fixed σ" else None
        grid_out = net(torch.tensor(GRID, dtype=torch.float32)[:, None]).double()
        dist = distribution(head, grid_out, sigma)
        held = distribution(head, net(xh).double(), sigma)
        target = yh[:, 0].double()
        hq = quantiles(held)                                              # (4, N_HELDOUT)
        mixture = isinstance(dist, MixtureSameFamily)
        empty = np.zeros((0, 2))
        return Snapshot(
            step=step, mean=dist.mean.numpy(), bounds=quantiles(dist).numpy(),
            weights=dist.mixture_distribution.probs.numpy() if mixture else empty,
            comp_means=dist.component_distribution.loc.numpy() if mixture else empty,
            comp_sds=dist.component_distribution.scale.numpy() if mixture else empty,
            spread=dist.stddev.numpy() if head != "Laplace" else dist.scale.numpy(),
            nll=float(-held.log_prob(target).mean()),
            coverage90=float(((hq[0] <= target) & (target <= hq[3])).double().mean()),
            coverage50=float(((hq[1] <= target) & (target <= hq[2])).double().mean()),
        )


@functools.cache
def snapshots(data: str, head: str) -> tuple[Snapshot, ...]:
    """Train the (data, head) model once by full-batch Adam and keep a snapshot at each STEPS."""
    (x, y), _ = dataset(data)
    net = network(head)
    optimizer = torch.optim.Adam(net.parameters(), lr=LEARNING_RATE)
    kept = []
    for step in range(STEPS[-1] + 1):
        if step in STEPS:
            kept.append(_evaluate(head, net, data, step))
        if step < STEPS[-1]:
            optimizer.zero_grad()
            loss(head, net(x), y).backward()
            optimizer.step()
    return tuple(kept)


@dataclass(frozen=True)
class Result:
    data: str
    head: str
    snapshot: int
    now: Snapshot
    steps: np.ndarray          # Adam steps of every snapshot
    nll: np.ndarray            # held-out NLL at every snapshot
    coverage90: np.ndarray
    coverage50: np.ndarray
    x_train: np.ndarray
    y_train: np.ndarray
    grid: np.ndarray
    truth: np.ndarray          # (curves, grid): the true mean, or the two true branches
    tolerance: float           # 4 binomial standard errors of a 90 % coverage on N_HELDOUT points


def compute(**params) -> Result:
    """Look up (training once per data set and head, on first use) the chosen snapshot."""
    p = validate(CONTROLS, params)
    kept = snapshots(p["data"], p["head"])
    (x, y), _ = dataset(p["data"])
    truth = np.sin(2 * GRID)[None] if p["data"] == "one branch" else np.stack([branch(GRID), -branch(GRID)])
    return Result(
        data=p["data"], head=p["head"], snapshot=p["snapshot"], now=kept[p["snapshot"]],
        steps=np.array(STEPS), nll=np.array([s.nll for s in kept]),
        coverage90=np.array([s.coverage90 for s in kept]), coverage50=np.array([s.coverage50 for s in kept]),
        x_train=x[:, 0].double().numpy(), y_train=y[:, 0].double().numpy(), grid=GRID, truth=truth,
        tolerance=4 * math.sqrt(0.9 * 0.1 / N_HELDOUT),
    )


def draw(fig, r: Result) -> None:
    ax_d, ax_n, ax_c = panels(fig, 3, left=0.06, right=0.985, wspace=0.3, width_ratios=(2.2, 1, 1))
    s = r.now
    ax_d.plot(r.x_train, r.y_train, ".", color="0.55", markersize=2.5, alpha=0.6)
    for curve in r.truth:
        ax_d.plot(r.grid, curve, "--", color="black", linewidth=0.9)
    if r.head == "mixture":
        for k, color in enumerate(("tab:purple", "tab:green")):
            m, sd, w = s.comp_means[:, k], s.comp_sds[:, k], s.weights[:, k]
            ax_d.fill_between(r.grid, m - 1.645 * sd, m + 1.645 * sd, color=color, alpha=0.25, linewidth=0)
            ax_d.scatter(r.grid[::4], m[::4], s=30 * w[::4], color=color, zorder=3)
        ax_d.plot(r.grid, s.bounds[0], ":", color="tab:blue", linewidth=1)
        ax_d.plot(r.grid, s.bounds[3], ":", color="tab:blue", linewidth=1)
        what = "components: mean ± 1.645 sd (dot size: weight); dotted: 90 % interval"
    else:
        ax_d.fill_between(r.grid, s.bounds[0], s.bounds[3], color="tab:blue", alpha=0.18, linewidth=0)
        ax_d.fill_between(r.grid, s.bounds[1], s.bounds[2], color="tab:blue", alpha=0.3, linewidth=0)
        what = "mean with its 50 % and 90 % intervals; dashed: truth"
    ax_d.plot(r.grid, s.mean, color="tab:blue", linewidth=1.6)
    low, high = float(np.min(r.y_train)), float(np.max(r.y_train))
    ax_d.set(xlim=X_RANGE, ylim=(low - 0.3 * (high - low), high + 0.3 * (high - low)), xlabel="x", ylabel="y",
             title=f"{r.head} on {r.data}, step {s.step}")
    ax_d.xaxis.set_major_locator(MaxNLocator(4))
    ax_d.yaxis.set_major_locator(MaxNLocator(4))
    ax_d.text(0.02, 0.02, what, transform=ax_d.transAxes, fontsize=7, color="0.3")

    # Small panels with few ticks and no legends: tick labels and legends are most of a redraw.
    index = np.arange(len(r.steps))
    labelled = index[::3]
    ax_n.plot(index, r.nll, "-o", color="tab:red", markersize=3)
    ax_n.plot([r.snapshot], [s.nll], "o", color="black", markersize=7, markerfacecolor="none")
    ax_n.set(xticks=labelled, xticklabels=[str(v) for v in r.steps[::3]], xlabel="Adam step",
             ylabel="held-out NLL (nats per point)", title=f"NLL {s.nll:.3f}")
    ax_n.yaxis.set_major_locator(MaxNLocator(3))

    for target, values, color in ((0.9, r.coverage90, "tab:blue"), (0.5, r.coverage50, "tab:orange")):
        ax_c.axhspan(target - r.tolerance, target + r.tolerance, color=color, alpha=0.12, linewidth=0)
        ax_c.plot(index, values, "-o", color=color, markersize=3)
        ax_c.text(index[-1], target + r.tolerance + 0.01, f"{round(100 * target)} %", color=color,
                  fontsize=7, ha="right", va="bottom")
    ax_c.axvline(r.snapshot, color="black", linewidth=0.8)
    ax_c.set(xticks=labelled, xticklabels=[str(v) for v in r.steps[::3]], ylim=(0, 1.05),
             yticks=[0, 0.5, 0.9], xlabel="Adam step", ylabel="held-out coverage",
             title=f"coverage {s.coverage90:.3f} / {s.coverage50:.3f}")


def readouts(r: Result) -> dict[str, str]:
    s = r.now
    out = {
        "training": f"{s.step} full-batch Adam steps (snapshot {r.snapshot} of {len(r.steps) - 1})",
        "held-out NLL": f"{s.nll:.4f} nats per point ({N_HELDOUT} points)",
        "coverage of the 90 % interval": f"{s.coverage90:.3f} (4 binomial standard errors: ±{r.tolerance:.3f})",
        "coverage of the 50 % interval": f"{s.coverage50:.3f}",
    }
    middle = len(r.grid) // 2
    if r.head == "fixed σ":
        out["spread"] = f"σ = {s.spread[0]:.3f} at every x (the RMS training residual)"
    elif r.head == "mixture":
        w = s.weights[middle]
        out["mixture weights at x = 0"] = f"{w[0]:.3f} + {w[1]:.3f} = {w.sum():.3f}"
        out["component means at x = 0"] = f"{s.comp_means[middle, 0]:+.3f}, {s.comp_means[middle, 1]:+.3f}"
    else:
        name = "σ(x)" if r.head == "learned σ(x)" else "b(x)"
        out["spread"] = f"{name} = {s.spread[middle]:.3f} at x = 0, {s.spread[-1]:.3f} at x = 3"
    return out


EXPLORER = Explorer("W19 · A network that predicts a distribution", CONTROLS, compute, draw, readouts,
                    frame_control="snapshot", figsize=(9.0, 3.3))


def show(**params):
    """Display the explorer: live in a notebook, static when building the book."""
    return _show(EXPLORER, **params)
