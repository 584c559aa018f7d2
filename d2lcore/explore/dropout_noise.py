"""W9 Dropout is Bernoulli noise: inverted dropout multiplies each activation by m / (1 - p).

Three fixed activations h = (0.5, 1, 2) go through inverted dropout with drop probability p
(torch's ``p``: the probability of ZEROING a unit; the Bayesian papers write the keep
probability 1 - p instead). Each draw keeps a unit with probability 1 - p and scales it by
1 / (1 - p), so the output takes two values, 0 and h / (1 - p), and

    E[h~] = (1 - p) h / (1 - p) = h,        Var[h~] = h^2 p / (1 - p).

In eval mode the layer is the identity: it returns the mean h itself. The draws come from one
fixed pool of uniforms U (a private generator), a unit kept when U >= p, so moving p or the
number of samples changes the masks continuously instead of redrawing them.

Panels: the two-atom distribution of each output (the fraction of draws at 0 and at
h / (1 - p)); the running mean of the draws against their number, converging to h inside a
band of 5 standard errors; Var / h^2 against p, the curve p / (1 - p) with each unit's sample
variance at the current p.

Aha: inverted dropout is unbiased multiplicative noise; its variance grows like p / (1 - p);
eval mode returns its mean.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from matplotlib.ticker import MaxNLocator

from d2lcore.explore import toolkit
from d2lcore.explore.toolkit import Choice, Explorer, Slider, panels, show as _show, validate

H = np.array([0.5, 1.0, 2.0])
MAX_SAMPLES = 2000
COLORS = ("tab:blue", "tab:orange", "tab:green")
P_CURVE = np.linspace(0.0, 0.95, 96)

CONTROLS = (
    Slider("drop", "drop probability p (torch's p)", 0.0, 0.95, 0.05, 0.5),
    Slider("samples", "number of masks drawn", 1, MAX_SAMPLES, 1, 200, integer=True),
    Choice("mode", "mode", ("train", "eval"), "train"),
)


def _pool(seed: int = 9) -> np.ndarray:
    """(MAX_SAMPLES, 3) uniforms from a private generator; unit j of draw i is kept if U >= p."""
    g = toolkit.generator(seed)
    u = torch.rand(MAX_SAMPLES, len(H), generator=g, dtype=torch.float64).numpy()
    u.setflags(write=False)
    return u


UNIFORMS = _pool()


@dataclass(frozen=True)
class Result:
    drop: float
    samples: int
    mode: str
    h: np.ndarray              # (3,) the input activations
    outputs: np.ndarray        # (samples, 3) the dropped-out activations
    running_mean: np.ndarray   # (samples, 3) mean of the first i draws
    sample_mean: np.ndarray    # (3,)
    sample_var: np.ndarray     # (3,) with divisor n (0 for a single draw)
    exact_mean: np.ndarray     # (3,) the mean of the two-atom distribution: h
    exact_var: np.ndarray      # (3,) h^2 p / (1 - p) in train mode, 0 in eval mode
    kept_fraction: float       # fraction of the samples x 3 units that were kept
    band: np.ndarray           # (samples, 3) 5 standard errors of the running mean


def compute(**params) -> Result:
    """Draw ``samples`` dropout masks at drop probability ``drop`` (train) or none (eval)."""
    p = validate(CONTROLS, params)
    drop, n, mode = p["drop"], p["samples"], p["mode"]
    if mode == "train":
        keep = UNIFORMS[:n] >= drop                                  # (n, 3) Bernoulli(1 - p)
        outputs = np.where(keep, H / (1 - drop), 0.0)                # (n, 3)
        atoms, weights = np.stack([np.zeros_like(H), H / (1 - drop)]), np.array([drop, 1 - drop])
        exact_var = H**2 * drop / (1 - drop)
        kept = float(keep.mean())
    else:
        outputs = np.broadcast_to(H, (n, len(H))).copy()
        atoms, weights = H[None], np.array([1.0])
        exact_var = np.zeros_like(H)
        kept = 1.0
    counts = np.arange(1, n + 1)[:, None]
    running = np.cumsum(outputs, axis=0) / counts
    exact_mean = (weights[:, None] * atoms).sum(axis=0)             # = H up to rounding
    return Result(
        drop=drop, samples=n, mode=mode, h=H, outputs=outputs, running_mean=running,
        sample_mean=running[-1], sample_var=outputs.var(axis=0), exact_mean=exact_mean,
        exact_var=exact_var, kept_fraction=kept, band=5 * np.sqrt(exact_var / counts),
    )


def draw(fig, r: Result) -> None:
    ax_d, ax_m, ax_v = panels(fig, 3, left=0.06, right=0.985, wspace=0.32)
    for j, (h, color) in enumerate(zip(r.h, COLORS)):
        values, counts = np.unique(r.outputs[:, j], return_counts=True)
        ax_d.vlines(values + 0.04 * (j - 1), 0, counts / r.samples, color=color, linewidth=3)
    top = float(r.outputs.max())
    ax_d.set(xlim=(-0.3, max(top, 2.0) * 1.1 + 0.1), ylim=(0, 1.05), xlabel="dropped-out activation",
             ylabel="fraction of draws", title=f"{r.mode}: h = 0.5, 1, 2 (blue, orange, green)")
    ax_d.xaxis.set_major_locator(MaxNLocator(4))

    steps = np.arange(1, r.samples + 1)
    for j, color in enumerate(COLORS):
        ax_m.fill_between(steps, r.h[j] - r.band[:, j], r.h[j] + r.band[:, j], color=color, alpha=0.12,
                          linewidth=0)
        ax_m.plot(steps, r.running_mean[:, j], color=color, linewidth=1.2)
        ax_m.axhline(r.h[j], color=color, linestyle=":", linewidth=1)
    ax_m.set(xscale="log" if r.samples > 1 else "linear", ylim=(0, 4.5), xlabel="number of draws",
             ylabel="running mean", title="mean → h (band: 5 standard errors)")
    ax_m.yaxis.set_major_locator(MaxNLocator(4))

    ax_v.plot(P_CURVE, P_CURVE / (1 - P_CURVE), color="black", linewidth=1.2)
    ratio = r.sample_var / r.h**2
    ax_v.scatter(np.full(len(r.h), r.drop), ratio, c=COLORS, s=18, zorder=3)
    ax_v.axvline(r.drop, color="0.5", linewidth=0.8)
    ax_v.set(yscale="log", ylim=(1e-2, 40), xlim=(0, 0.95), xlabel="drop probability p",
             ylabel="variance / h²", title="Var = h² p / (1 − p) (curve)")
    ax_v.set_yticks([0.01, 0.1, 1, 10])
    ax_v.xaxis.set_major_locator(MaxNLocator(4))


def readouts(r: Result) -> dict[str, str]:
    j = 1  # the unit with h = 1
    return {
        "kept": f"{r.kept_fraction:.3f} of the units (expected 1 − p = {1 - r.drop:.2f} in train mode)"
        if r.mode == "train" else "every unit, unscaled (eval mode is the identity)",
        "mean of h = 1": f"{r.sample_mean[j]:.4f} (exact {r.exact_mean[j]:.4f})",
        "variance of h = 1": f"{r.sample_var[j]:.4f} (exact p/(1−p) = {r.exact_var[j]:.4f})",
        "keep probability (Bayesian papers' p)": f"{1 - r.drop:.2f}",
    }


EXPLORER = Explorer("W9 · Dropout is Bernoulli noise", CONTROLS, compute, draw, readouts,
                    frame_control="drop", figsize=(9.0, 3.2))


def show(**params):
    """Display the explorer: live in a notebook, static when building the book."""
    return _show(EXPLORER, **params)
