"""W10 Monte-Carlo dropout: keep dropout on at test time and read the spread of T passes.

Data: N_TRAIN points in two clusters, x in [-2.5, -1] and [1, 2.5], y = sin(2x) + 0.1 eps, from
a private generator; between the clusters lies a gap (-1, 1) with no data, and beyond them
open space up to |x| = 4. Networks: 1 -> WIDTH -> 1 or 1 -> WIDTH -> WIDTH -> 1, ReLU, with
inverted dropout (drop probability p) after every hidden layer, initialised as nn.Linear would
and trained by full-batch Adam on the mean squared error for STEPS steps, a fresh mask per
example per step; every mask comes from a private generator, so training is deterministic and
leaves the global generators alone. A network is trained the first time it is asked for (about
a second) and cached with T_MAX stochastic passes over the grid.

One pass is one sub-network: a mask is drawn per hidden unit and shared by every x, so a pass is
a function of x (a curve). The marginal mean and variance at each x are the same as with a fresh
mask per point (what nn.Dropout does to a batch).

For one hidden layer the variance over masks has a closed form, p / (1 - p) sum_j v_j^2
relu(a_j x + b_j)^2 (v: output weights), a sum of convex functions of x, so it is convex: in
the gap it can never exceed the larger of its values at the gap's two edges (Foong et al.'s
point about "in-between" uncertainty, here exact). ``exact_sd`` holds it; deeper nets have no
such formula and no such bound.

Aha: keeping dropout on gives a spread; whether that spread grows where the data are missing
depends on the architecture, so read it as a property of the model, not as a posterior.
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

from d2lcore.explore import toolkit
from d2lcore.explore.toolkit import Choice, Explorer, Slider, panels, show as _show, validate

N_TRAIN, WIDTH, STEPS, LEARNING_RATE, NOISE = 40, 50, 600, 1e-2, 0.1
CLUSTERS = ((-2.5, -1.0), (1.0, 2.5))
GAP = (-1.0, 1.0)
GRID = np.linspace(-4.0, 4.0, 161)
T_MAX = 200
DROPS = (0.1, 0.5)
SEEDS = {"data": 51, "network": 52, "masks": 53, "passes": 54}

CONTROLS = (
    Choice("drop", "drop probability p", DROPS, 0.1),
    Choice("depth", "hidden layers", (1, 2), 2),
    Slider("passes", f"stochastic passes T (1 to {T_MAX})", 1, T_MAX, 1, 50, integer=True),
)


def truth(x):
    return np.sin(2 * x)


@functools.cache
def dataset() -> tuple[torch.Tensor, torch.Tensor]:
    """(x, y), each (N_TRAIN, 1) float32: half the points in each cluster."""
    g = toolkit.generator(SEEDS["data"])
    u = torch.rand(N_TRAIN, 1, generator=g)
    lo = torch.tensor([CLUSTERS[0][0]] * (N_TRAIN // 2) + [CLUSTERS[1][0]] * (N_TRAIN - N_TRAIN // 2))[:, None]
    x = lo + 1.5 * u
    y = torch.sin(2 * x) + NOISE * torch.randn(N_TRAIN, 1, generator=g)
    return x, y


class DropoutMLP(nn.Module):
    """ReLU layers with inverted dropout after each hidden layer, masks from a given generator.

    ``forward(x)`` is the deterministic (eval-mode) network; ``forward(x, generator=g)`` drops
    units: one mask per row of x by default, or ``shared=True`` one mask per leading index of
    a (T, G, 1) input, shared along G (each pass a sub-network)."""

    def __init__(self, depth: int, drop: float, width: int = WIDTH, seed: int = SEEDS["network"]):
        super().__init__()
        g = toolkit.generator(seed)
        sizes = (1,) + (width,) * depth + (1,)
        layers = [torch.nn.utils.skip_init(nn.Linear, a, b) for a, b in zip(sizes, sizes[1:])]
        for layer in layers:  # U(+-1/sqrt(fan_in)), nn.Linear's own default
            bound = 1 / math.sqrt(layer.in_features)
            nn.init.uniform_(layer.weight, -bound, bound, generator=g)
            nn.init.uniform_(layer.bias, -bound, bound, generator=g)
        self.layers = nn.ModuleList(layers)
        self.drop = drop

    def forward(self, x: torch.Tensor, generator: torch.Generator | None = None,
                shared: bool = False) -> torch.Tensor:
        h = x                                                     # (N, 1) or (T, G, 1)
        for layer in self.layers[:-1]:
            h = torch.relu(layer(h))                              # (..., width)
            if generator is not None and self.drop > 0:
                shape = (h.shape[0], 1, h.shape[-1]) if shared else h.shape
                keep = torch.rand(shape, generator=generator, device=h.device) >= self.drop
                h = h * keep / (1 - self.drop)
        return self.layers[-1](h)


def train(net: DropoutMLP, x: torch.Tensor, y: torch.Tensor, steps: int = STEPS,
          seed: int = SEEDS["masks"], dropout: bool = True) -> DropoutMLP:
    """Full-batch Adam on the MSE, a fresh mask per example per step (none if not dropout)."""
    g = toolkit.generator(seed)
    optimizer = torch.optim.Adam(net.parameters(), lr=LEARNING_RATE)
    for _ in range(steps):
        optimizer.zero_grad()
        F.mse_loss(net(x, generator=g if dropout else None), y).backward()
        optimizer.step()
    return net


def stochastic_passes(net: DropoutMLP, grid: np.ndarray = GRID, count: int = T_MAX,
                      seed: int = SEEDS["passes"]) -> np.ndarray:
    """(count, len(grid)) predictions, one sub-network (shared mask) per row."""
    x = torch.tensor(grid, dtype=torch.float32)[None, :, None].expand(count, -1, 1)  # (T, G, 1)
    with torch.no_grad():
        return net(x, generator=toolkit.generator(seed), shared=True)[..., 0].double().numpy()


def exact_sd_one_layer(net: DropoutMLP, grid: np.ndarray = GRID) -> np.ndarray:
    """The standard deviation over masks of a one-hidden-layer net, in closed form."""
    first, last = net.layers
    with torch.no_grad():
        h = torch.relu(first(torch.tensor(grid, dtype=torch.float32)[:, None])).double()  # (G, W)
        v = last.weight[0].double()                                                       # (W,)
        var = net.drop / (1 - net.drop) * (h**2 * v**2).sum(dim=1)
    return var.sqrt().numpy()


@functools.cache
def trained(drop: float, depth: int) -> tuple[DropoutMLP, np.ndarray, np.ndarray]:
    """The (drop, depth) network, trained once; its T_MAX passes; its eval-mode curve."""
    x, y = dataset()
    net = train(DropoutMLP(depth, drop), x, y)
    with torch.no_grad():
        deterministic = net(torch.tensor(GRID, dtype=torch.float32)[:, None])[:, 0].double().numpy()
    passes = stochastic_passes(net)
    passes.setflags(write=False)
    deterministic.setflags(write=False)
    return net, passes, deterministic


def regions(grid: np.ndarray = GRID) -> dict[str, np.ndarray]:
    """Boolean masks of the grid: on the data, in the gap, far outside (|x| >= 3.5)."""
    on = np.zeros(len(grid), dtype=bool)
    for lo, hi in CLUSTERS:
        on |= (grid >= lo) & (grid <= hi)
    return {"data": on, "gap": (grid > GAP[0]) & (grid < GAP[1]), "far": np.abs(grid) >= 3.5}


@dataclass(frozen=True)
class Result:
    drop: float
    depth: int
    passes: int
    grid: np.ndarray
    x_train: np.ndarray
    y_train: np.ndarray
    samples: np.ndarray        # (passes, grid) the first T stored passes
    mean: np.ndarray           # (grid,) their mean: the MC predictive mean
    sd: np.ndarray             # (grid,) their standard deviation (divisor T)
    deterministic: np.ndarray  # (grid,) the eval-mode (weight-scaling) prediction
    exact_sd: np.ndarray       # (grid,) closed form over masks for one hidden layer; empty for two
    sd_data: float             # mean sd on the data's clusters
    sd_gap: float              # largest sd in the gap
    sd_far: float              # mean sd where |x| >= 3.5


def compute(**params) -> Result:
    """Look up (training on first use) the network and summarise its first T passes."""
    p = validate(CONTROLS, params)
    net, stored, deterministic = trained(p["drop"], p["depth"])
    samples = stored[: p["passes"]]
    sd = samples.std(axis=0)
    where = regions()
    x, y = dataset()
    return Result(
        drop=p["drop"], depth=p["depth"], passes=p["passes"], grid=GRID,
        x_train=x[:, 0].double().numpy(), y_train=y[:, 0].double().numpy(),
        samples=samples, mean=samples.mean(axis=0), sd=sd, deterministic=deterministic,
        exact_sd=exact_sd_one_layer(net) if p["depth"] == 1 else np.zeros(0),
        sd_data=float(sd[where["data"]].mean()), sd_gap=float(sd[where["gap"]].max()),
        sd_far=float(sd[where["far"]].mean()),
    )


def draw(fig, r: Result) -> None:
    ax_f, ax_s = panels(fig, 2, left=0.07, right=0.98, wspace=0.25, width_ratios=(1.6, 1))
    for lo, hi in (GAP,):
        for ax in (ax_f, ax_s):
            ax.axvspan(lo, hi, color="0.92", linewidth=0)
    for row in r.samples[:20]:
        ax_f.plot(r.grid, row, color="tab:blue", linewidth=0.5, alpha=0.35)
    ax_f.fill_between(r.grid, r.mean - 2 * r.sd, r.mean + 2 * r.sd, color="tab:blue", alpha=0.15, linewidth=0)
    ax_f.plot(r.grid, r.mean, color="tab:blue", linewidth=1.6)
    ax_f.plot(r.grid, truth(r.grid), "--", color="black", linewidth=0.9)
    ax_f.plot(r.x_train, r.y_train, "o", color="tab:red", markersize=2.5)
    ax_f.set(xlim=(GRID[0], GRID[-1]), ylim=(-3, 3), xlabel="x", ylabel="y",
             title=f"p = {r.drop}, {r.depth} hidden layer{'s' if r.depth > 1 else ''}: "
                   f"mean ± 2 sd of {r.passes} passes")
    ax_f.yaxis.set_major_locator(MaxNLocator(4))

    ax_s.plot(r.grid, r.sd, color="tab:blue", linewidth=1.4)
    if len(r.exact_sd):
        ax_s.plot(r.grid, r.exact_sd, ":", color="black", linewidth=1.1)
    ax_s.plot(r.x_train, np.zeros_like(r.x_train), "|", color="tab:red", markersize=6)
    top = max(float(r.sd.max()), float(r.exact_sd.max()) if len(r.exact_sd) else 0.0, 0.05)
    ax_s.set(xlim=(GRID[0], GRID[-1]), ylim=(0, 1.1 * top), xlabel="x", ylabel="sd of the passes",
             title="spread (dotted: exact, 1 layer); grey: the gap")
    ax_s.yaxis.set_major_locator(MaxNLocator(4))


def readouts(r: Result) -> dict[str, str]:
    def times(value: float) -> str:  # one pass has no spread at all
        return f"{value / r.sd_data:.2f} × the data's" if r.sd_data > 0 else "no spread from one pass"

    return {
        "sd on the data": f"{r.sd_data:.4f} (mean over the two clusters)",
        "sd in the gap": f"{r.sd_gap:.4f} (largest), {times(r.sd_gap)}",
        "sd far out (|x| ≥ 3.5)": f"{r.sd_far:.4f}, {times(r.sd_far)}",
        "keep probability (Gal and Ghahramani's p)": f"{1 - r.drop:.1f}",
    }


EXPLORER = Explorer("W10 · Monte-Carlo dropout", CONTROLS, compute, draw, readouts,
                    frame_control="passes", figsize=(9.0, 3.3))


def show(**params):
    """Display the explorer: live in a notebook, static when building the book."""
    return _show(EXPLORER, **params)
