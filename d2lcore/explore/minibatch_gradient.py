"""W11 A minibatch gradient is a sample mean: SGD's noise is sampling variance.

One fixed data set of N = 200 points from y = 2x + Gaussian noise, and the model y ≈ w x with
the Gaussian negative log-likelihood (sigma = 1, in nats) as its loss. At the chosen w every
example has its own gradient; the full-batch gradient is their mean. A minibatch gradient is
the mean of B of them drawn at random, so it scatters around the full gradient with variance
sigma²/B, where sigma² is the variance of the per-example gradients. Drawing without
replacement (one shuffled pass, as in an epoch) shrinks it by the finite-population factor
(N - B)/(N - 1), often written 1 - B/N (the same up to O(1/N)): at B = N it is zero.

Controls: batch size B, with or without replacement, and the parameter w. Aha: the noise of
SGD is the sampling error of a mean; it shrinks like 1/B, and a batch of the whole data set
has none.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from d2lcore import likelihood
from d2lcore.data import SyntheticRegression
from d2lcore.explore import toolkit
from d2lcore.explore.toolkit import Explorer, Slider, Toggle, panels, show as _show, validate

N = 200
DRAWS = 2000        # minibatches drawn per state
BINS = 40
NOISE_SIGMA = 1.0   # the Gaussian noise of the data, and the sigma of the loss
_DATA = SyntheticRegression(w=[2.0], b=0.0, noise=NOISE_SIGMA, n_train=N, n_val=0, seed=11)
X = _DATA.X_train[:, 0].double()
Y = _DATA.y_train[:, 0].double()
# Batch sizes at which the Monte-Carlo variance is drawn on the log-log panel.
GRID = np.unique(np.geomspace(1, N, 16).round().astype(int))



def _draw_indices(seed: int = 1234) -> dict[bool, np.ndarray]:
    """DRAWS rows of N example indices: uniform draws (with replacement) or random permutations
    (without; argsort of independent uniform keys). They depend on no control, so they are drawn
    once, seeded, at import: a live update then only gathers and sums."""
    generator = toolkit.generator(seed)
    with_replacement = torch.randint(N, (DRAWS, N), generator=generator)
    permutations = torch.rand(DRAWS, N, generator=generator).argsort(dim=1)
    return {True: with_replacement.to(torch.int16).numpy(), False: permutations.to(torch.int16).numpy()}


_INDEX = _draw_indices()

CONTROLS = (
    Slider("batch_size", "batch size B", 1, N, 1, 10, integer=True),
    Toggle("replacement", "draw with replacement", False),
    Slider("w", "parameter w (true value 2)", -2.0, 6.0, 0.1, 0.5),
)


@dataclass(frozen=True)
class Result:
    w: float
    batch_size: int
    replacement: bool
    per_example: np.ndarray       # d(-log N(y_i; w x_i, 1)) / dw for each example, nats per unit of w
    full_gradient: float          # autograd gradient of the mean NLL over all N examples
    per_example_variance: float   # sigma² = mean of (g_i - full gradient)², the population variance
    minibatch: np.ndarray         # DRAWS minibatch gradients at the chosen B
    grid: np.ndarray              # batch sizes for the variance panel
    mc_variance: np.ndarray       # Monte-Carlo variance of the minibatch gradient at each grid size
    mc_variance_at_b: float
    mc_standard_error_at_b: float  # standard error of mc_variance_at_b, estimated from the draws
    theory_at_b: float
    edges: np.ndarray             # histogram bins shared by both histograms
    example_counts: np.ndarray    # per-example gradients per bin
    minibatch_counts: np.ndarray  # minibatch gradients per bin

    @property
    def n(self) -> int:
        return len(self.per_example)


def theory(per_example_variance: float, batch_size, replacement: bool, n: int = N):
    """Variance of a minibatch mean: sigma²/B, times (N - B)/(N - 1) without replacement."""
    b = np.asarray(batch_size, dtype=float)
    factor = 1.0 if replacement else (n - b) / (n - 1)
    return per_example_variance / b * factor


def gradients(w: float) -> tuple[np.ndarray, float]:
    """Per-example gradients and the full-batch gradient, both from autograd.

    Giving every example its own copy of w makes d(sum of losses)/d(copy i) example i's gradient
    in one backward pass; the full gradient is differentiated separately, from the mean loss."""
    gaussian = likelihood.get("mse")
    copies = torch.full((N,), w, dtype=torch.float64, requires_grad=True)
    losses = -gaussian.distribution(copies * X, sigma=NOISE_SIGMA).log_prob(Y)
    (per_example,) = torch.autograd.grad(losses.sum(), copies)
    shared = torch.tensor(w, dtype=torch.float64, requires_grad=True)
    (full,) = torch.autograd.grad(likelihood.nll("mse", shared * X, Y, sigma=NOISE_SIGMA), shared)
    return per_example.numpy(), float(full)


def compute(**params) -> Result:
    """Per-example gradients, seeded minibatch gradients and their variance (see CONTROLS)."""
    p = validate(CONTROLS, params)
    b, replace = p["batch_size"], p["replacement"]
    per_example, full = gradients(p["w"])
    # The first B entries of a row of indices are a minibatch of size B, so one cumulative sum
    # gives the minibatch means for every B at once (no loop over draws or sizes).
    means = np.cumsum(per_example[_INDEX[replace]], axis=1) / np.arange(1, N + 1)
    # The expected minibatch gradient is exactly the full gradient, so the Monte-Carlo variance
    # measures spread around it (an unbiased mean of DRAWS squares, no sample mean needed).
    at_b = (means[:, b - 1] - full) ** 2
    variance = float(np.mean((per_example - full) ** 2))
    # Both histograms share bins spanning the per-example gradients; a minibatch mean, a
    # convex combination of them, always falls inside (the clip only absorbs rounding).
    edges = np.linspace(per_example.min(), per_example.max(), BINS + 1)
    minibatch = means[:, b - 1]
    return Result(
        w=p["w"], batch_size=b, replacement=replace,
        per_example=per_example, full_gradient=full, per_example_variance=variance,
        minibatch=minibatch,
        grid=GRID, mc_variance=((means[:, GRID - 1] - full) ** 2).mean(axis=0),
        mc_variance_at_b=float(at_b.mean()),
        mc_standard_error_at_b=float(at_b.std(ddof=1) / np.sqrt(DRAWS)),
        theory_at_b=float(theory(variance, b, replace)),
        edges=edges,
        example_counts=np.histogram(per_example, edges)[0],
        minibatch_counts=np.histogram(np.clip(minibatch, edges[0], edges[-1]), edges)[0],
    )


def draw(fig, r: Result) -> None:
    ax_e, ax_b, ax_v = panels(fig, 3, left=0.06, right=0.985, wspace=0.33)
    for ax, counts, color in ((ax_e, r.example_counts, "tab:blue"), (ax_b, r.minibatch_counts, "tab:orange")):
        ax.stairs(counts, r.edges, fill=True, color=color)
        ax.axvline(r.full_gradient, color="black", linestyle="--", linewidth=1.2)
        ax.set_xlim(r.edges[0], r.edges[-1])
        ax.locator_params(nbins=4)  # fewer ticks: tick labels are most of the drawing time
    ax_e.set(xlabel="gradient g_i (nats per unit of w)", ylabel="examples",
             title=f"{r.n} per-example gradients")
    how = "with" if r.replacement else "without"
    ax_b.set(xlabel="minibatch gradient (nats per unit of w)", ylabel="minibatches",
             title=f"{len(r.minibatch)} minibatches of B = {r.batch_size}")

    # Without replacement the variance is 0 at B = N: a log axis cannot show it, so stop at N - 1.
    # The panel plots log10 values on linear axes with power-of-ten labels: it looks like a
    # log-log plot and costs a third less to draw than matplotlib's log scales.
    b = np.arange(1, r.n + (1 if r.replacement else 0))
    shown = r.grid <= b[-1]
    # Lines labelled at their right ends rather than by a legend, which would cost a tenth of an update.
    law = np.log10(theory(r.per_example_variance, b, True))
    ax_v.plot(np.log10(b), law, color="0.5", linestyle=":", linewidth=1.2)
    ax_v.text(np.log10(b[-1]), law[-1], "σ²/B", fontsize=8, color="0.4", ha="right", va="bottom")
    low = law[-1]
    if not r.replacement:
        finite = np.log10(theory(r.per_example_variance, b, False))
        ax_v.plot(np.log10(b), finite, color="black", linewidth=1.2)
        ax_v.text(np.log10(b[-1]), finite[-1], "σ²/B·(N-B)/(N-1)", fontsize=8, ha="right", va="top")
        low = finite[-1]
    ax_v.plot(np.log10(r.grid[shown]), np.log10(r.mc_variance[shown]), "o", color="tab:orange", markersize=4)
    if r.theory_at_b > 0:
        ax_v.plot([np.log10(r.batch_size)], [np.log10(r.mc_variance_at_b)], "o", color="tab:red", markersize=8,
                  markerfacecolor="none")
    decades = np.arange(np.floor(min(low, np.log10(r.mc_variance[shown]).min())), np.ceil(law[0]) + 1)
    ax_v.set(xticks=[0, 1, 2], xticklabels=["1", "10", "100"], yticks=decades,
             yticklabels=[f"1e{int(k)}" for k in decades], xlim=(-0.1, np.log10(r.n) + 0.1),
             xlabel="batch size B (log scale)", ylabel="variance (nats per unit of w)²",
             title=f"{how} replacement (dots: MC)")


def readouts(r: Result) -> dict[str, str]:
    unit = "nats per unit of w"
    return {
        "full gradient": f"{r.full_gradient:+.4f} {unit}",
        "per-example variance σ²": f"{r.per_example_variance:.4f} ({unit})²",
        f"Monte-Carlo variance at B = {r.batch_size}": f"{r.mc_variance_at_b:.4g} ± {r.mc_standard_error_at_b:.2g} ({unit})²",
        f"theory at B = {r.batch_size}": f"{r.theory_at_b:.4g} ({unit})²",
    }


EXPLORER = Explorer("W11 · A minibatch gradient is a sample mean", CONTROLS, compute, draw, readouts,
                    frame_control="batch_size", figsize=(9.0, 3.3))


def show(**params):
    """Display the explorer: live in a notebook, static when building the book."""
    return _show(EXPLORER, **params)
