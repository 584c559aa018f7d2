"""W2 The Huber density: the distribution whose negative log-likelihood is the Huber loss.

Controls: delta, where the quadratic core of the Huber loss turns linear, and the number of
samples drawn. Two panels: the normalised density exp(-huber_delta(r)) / Z(delta), its
Gaussian core |r| <= delta and its exponential tails shaded apart, with the standard Gaussian
and the Laplace density of the same tail decay (scale 1/delta) drawn faintly; and a histogram
of seeded samples from ``likelihood.Huber(0, delta)`` against the curve. The readouts put the
closed-form normaliser Z(delta) next to a numerical integral and give the mass in the core
and in the tails.

Aha: Huber is a Gaussian middle with Laplace-like tails. Large delta leaves almost no tail and
the density tends to N(0, 1); small delta leaves almost no core and it tends to a Laplace
density of scale 1/delta.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from matplotlib.ticker import MaxNLocator
from scipy import integrate
from scipy.special import ndtr

from d2lcore import likelihood
from d2lcore.explore import toolkit
from d2lcore.explore.toolkit import Explorer, Slider, panels, show as _show, validate

CONTROLS = (
    Slider("delta", "delta (core half-width)", 0.1, 5.0, 0.05, 1.0),
    Slider("samples", "number of samples", 200, 10000, 200, 2000, integer=True),
)

SEED = 2024
WINDOW = 6.0                       # the plots show r in [-WINDOW, WINDOW]
GRID = np.linspace(-WINDOW, WINDOW, 481)
EDGES = np.linspace(-WINDOW, WINDOW, 49)  # histogram bins of width 0.25


@dataclass(frozen=True)
class Result:
    delta: float
    grid: np.ndarray            # r
    density: np.ndarray         # Huber(0, delta) density on the grid
    gaussian: np.ndarray        # N(0, 1) density, for comparison
    laplace: np.ndarray         # Laplace(0, 1/delta) density: the same exponential tail decay
    log_z: float                # log Z(delta), closed form from the likelihood module
    z_closed: float             # Z(delta), closed form
    z_quad: float               # Z(delta) by numerical integration of exp(-huber_rho)
    total_mass: float           # numerical integral of the normalised density, Z_quad / Z: 1
    core_mass: float            # P(|r| <= delta), numerical
    tail_mass: float            # 1 - core_mass
    tv_gaussian: float          # total variation distance to N(0, 1)
    samples: np.ndarray         # seeded draws from likelihood.Huber(0, delta)
    edges: np.ndarray           # histogram bin edges
    counts: np.ndarray          # samples per bin
    heights: np.ndarray         # counts / (n * bin width): comparable with the density


def _integral(f, delta: float) -> float:
    """Integral over the real line of an even function with a kink at +-delta."""
    opts = {"epsabs": 0.0, "epsrel": 1e-10, "limit": 200}  # Z is compared with the closed form at 1e-8
    core = integrate.quad(f, 0.0, delta, **opts)[0]
    tail = integrate.quad(f, delta, np.inf, **opts)[0]
    return 2 * (core + tail)


def compute(**params) -> Result:
    """Density, normaliser, masses and samples for the given controls (see CONTROLS)."""
    p = validate(CONTROLS, params)
    delta, n = p["delta"], p["samples"]
    d = torch.tensor(delta, dtype=torch.float64)
    dist = likelihood.Huber(torch.tensor(0.0, dtype=torch.float64), d)

    def unnormalised(x: float) -> float:
        return math.exp(-float(likelihood.huber_rho(torch.tensor(x, dtype=torch.float64), d)))

    log_z = float(likelihood.huber_log_normalizer(d))
    z = math.exp(log_z)
    # Numerical integrals of the unnormalised density: over the line (Z) and over the core.
    z_quad = _integral(unnormalised, delta)
    core_mass = 2 * integrate.quad(unnormalised, 0.0, delta, epsabs=0.0, epsrel=1e-12)[0] / z

    # Total variation to N(0, 1). In the core the Huber density is the Gaussian times
    # sqrt(2 pi) / Z < 1; in the tails the ratio grows like exp((|r| - delta)^2 / 2), so the two
    # cross once per side, at x, and TV = P_gauss(|r| <= x) - P_huber(|r| <= x).
    cross = delta + math.sqrt(2 * max(log_z - 0.5 * math.log(2 * math.pi), 0.0))
    x = torch.tensor(cross, dtype=torch.float64)
    tv = float(2 * (ndtr(cross) - 0.5) - (dist.cdf(x) - dist.cdf(-x)))

    with toolkit.cpu_seeded(SEED):  # Distribution.sample draws from the global CPU generator
        samples = dist.sample((n,)).numpy()
    counts, _ = np.histogram(samples, bins=EDGES)

    grid = np.union1d(GRID, [-delta, delta])  # the core's ends are grid points, so the shading meets
    r = torch.tensor(grid, dtype=torch.float64)
    return Result(
        delta=delta, grid=grid,
        density=torch.exp(dist.log_prob(r)).numpy(),
        gaussian=torch.exp(torch.distributions.Normal(0.0, 1.0).log_prob(r)).numpy(),
        laplace=torch.exp(torch.distributions.Laplace(0.0, 1 / d).log_prob(r)).numpy(),
        log_z=log_z, z_closed=z, z_quad=z_quad,
        total_mass=z_quad / z, core_mass=core_mass, tail_mass=1 - core_mass, tv_gaussian=tv,
        samples=samples, edges=EDGES, counts=counts, heights=counts / (n * np.diff(EDGES)),
    )


def draw(fig, r: Result) -> None:
    ax_d, ax_s = panels(fig, 2, wspace=0.22)
    for ax in (ax_d, ax_s):
        ax.xaxis.set_major_locator(MaxNLocator(7))
        ax.yaxis.set_major_locator(MaxNLocator(5))

    ax_d.plot(r.grid, r.gaussian, color="0.5", linewidth=1, linestyle=":", label="N(0, 1)")
    ax_d.plot(r.grid, r.laplace, color="0.5", linewidth=1, linestyle="--", label="Laplace, scale 1/delta")
    ax_d.plot(r.grid, r.density, color="black", linewidth=1.8)
    core = np.abs(r.grid) <= r.delta
    ax_d.fill_between(r.grid, r.density, where=core, color="tab:blue", alpha=0.35, linewidth=0,
                      label="Gaussian core |r| <= delta")
    ax_d.fill_between(r.grid, r.density, where=np.abs(r.grid) >= r.delta, color="tab:orange", alpha=0.35,
                      linewidth=0, label="exponential tails")
    ax_d.set(xlim=(r.grid[0], r.grid[-1]), ylim=(0, 1.12 * max(r.density.max(), r.gaussian.max())),
             xlabel="r", ylabel="Huber density (per unit r)",
             title=f"delta = {r.delta:.2f}:  Z = {r.z_closed:.6g} (closed) = {r.z_quad:.6g} (quad)")
    ax_d.legend(fontsize=7, loc="upper left")

    ax_s.stairs(r.heights, r.edges, fill=True, color="tab:green", alpha=0.45)
    ax_s.plot(r.grid, r.density, color="black", linewidth=1.5)
    ax_s.set(xlim=(r.grid[0], r.grid[-1]), ylim=(0, 1.25 * max(r.density.max(), r.heights.max())),
             xlabel="r", ylabel="samples per unit r / n",
             title=f"histogram of {len(r.samples)} seeded samples vs density")


def readouts(r: Result) -> dict[str, str]:
    return {
        "Z(delta), closed form": f"{r.z_closed:.10g}",
        "Z(delta), numerical integral": f"{r.z_quad:.10g}",
        "relative difference": f"{abs(r.z_quad / r.z_closed - 1):.1e}",
        "mass in the core |r| <= delta": f"{r.core_mass:.4f}",
        "mass in the tails": f"{r.tail_mass:.4f}",
        "total variation to N(0, 1)": f"{r.tv_gaussian:.4f}",
    }


EXPLORER = Explorer("W2 · The Huber density", CONTROLS, compute, draw, readouts,
                    frame_control="delta", figsize=(9.0, 3.3))


def show(**params):
    """Display the explorer: live in a notebook, static when building the book."""
    return _show(EXPLORER, **params)
