"""W17 Forward and reverse diffusion: noise in closed form, a denoiser walks it back.

Two data sets whose density is known exactly, both mixtures of isotropic Gaussians:

    1-D   four components, weights (0.2, 0.3, 0.3, 0.2), means -3, -1, 1, 3, sd 0.3
    2-D   eight components of equal weight on a circle of radius 2.5, sd 0.2

The forward process has q(x_t | x_0) = N(sqrt(abar_t) x_0, (1 - abar_t) I) (Ho et al. 2020),
so q(x_t) is again a Gaussian mixture, with means sqrt(abar_t) mu_k and variances
abar_t s_k^2 + 1 - abar_t: its score is exact, and so is the ideal noise prediction
eps*(x, t) = -sqrt(1 - abar_t) grad log q_t(x). The schedule is Ho et al.'s linear one
compressed to T = 200 steps (beta from 1e-4 to 0.1, abar_T = 3e-5).

Ancestral sampling starts from N(0, I) at t = T and steps
x_{t-1} = (x_t - beta_t / sqrt(1 - abar_t) eps(x_t, t)) / sqrt(alpha_t) + sqrt(beta_t) z.
Without a model, eps is the exact eps* (an oracle); section 8.4 passes the networks it trains.
Everything is drawn from private generators with fixed seeds.

Aha: noise is added in closed form; the network only learns to predict it; sampling walks the
noise back, one small Gaussian step at a time.
"""
from __future__ import annotations

import functools
import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from d2lcore.explore import toolkit
from d2lcore.explore.toolkit import Choice, Explorer, Slider, panels, show as _show, validate

STEPS = 200
BETAS = torch.linspace(1e-4, 0.1, STEPS, dtype=torch.float64)   # beta_1 ... beta_T (index t - 1)
ALPHAS = 1 - BETAS
ABAR = torch.cumprod(ALPHAS, 0)
DATASETS = ("1-D", "2-D")
SAMPLES, SEED = 2000, 17
GRID_1D = np.linspace(-5.0, 5.0, 401)

_ANGLES = torch.arange(8, dtype=torch.float64) * (2 * math.pi / 8)
MIXTURES = {  # weights (K,), means (K, D), standard deviations (K,)
    "1-D": (torch.tensor([0.2, 0.3, 0.3, 0.2], dtype=torch.float64),
            torch.tensor([[-3.0], [-1.0], [1.0], [3.0]], dtype=torch.float64),
            torch.full((4,), 0.3, dtype=torch.float64)),
    "2-D": (torch.full((8,), 1 / 8, dtype=torch.float64),
            2.5 * torch.stack([_ANGLES.cos(), _ANGLES.sin()], dim=1),
            torch.full((8,), 0.2, dtype=torch.float64)),
}

CONTROLS = (
    Choice("data", "data", DATASETS, "1-D"),
    Slider("t", f"time step t (0: data, {STEPS}: noise)", 0, STEPS, 1, 50, integer=True),
)


def abar(t: int) -> float:
    """abar_t, with abar_0 = 1 (the data itself)."""
    return 1.0 if t == 0 else float(ABAR[t - 1])


def sample_data(data: str, n: int, g: torch.Generator) -> torch.Tensor:
    """(n, D) float64 draws from the data's mixture."""
    w, mu, sd = MIXTURES[data]
    k = torch.multinomial(w, n, replacement=True, generator=g)
    return mu[k] + sd[k, None] * torch.randn(n, mu.shape[1], generator=g, dtype=torch.float64)


def marginal(data: str, t: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The mixture q(x_t): weights, means sqrt(abar) mu_k, variances abar s_k^2 + 1 - abar."""
    w, mu, sd = MIXTURES[data]
    a = abar(t)
    return w, math.sqrt(a) * mu, a * sd**2 + (1 - a)


def log_density(data: str, t: int, x: torch.Tensor) -> torch.Tensor:
    """log q(x_t = x) for (N, D) points, exactly."""
    w, m, v = marginal(data, t)
    d = x.shape[1]
    sq = ((x[:, None, :] - m[None]) ** 2).sum(-1)                     # (N, K)
    return torch.logsumexp(w.log() - 0.5 * sq / v - 0.5 * d * torch.log(2 * math.pi * v), dim=1)


def oracle_eps(data: str, x: torch.Tensor, t: int) -> torch.Tensor:
    """eps*(x, t) = -sqrt(1 - abar_t) grad log q_t(x), for (N, D) points and t >= 1."""
    w, m, v = marginal(data, t)
    diff = x[:, None, :] - m[None]                                       # (N, K, D)
    logits = w.log() - 0.5 * (diff**2).sum(-1) / v - 0.5 * x.shape[1] * torch.log(v)
    r = logits.softmax(dim=1)                                            # (N, K) responsibilities
    score = -(r[..., None] * diff / v[None, :, None]).sum(1)             # (N, D)
    return -math.sqrt(1 - abar(t)) * score


EpsFn = Callable[[torch.Tensor, int], torch.Tensor]  # (N, D) float64 x_t, t -> (N, D) eps


def reverse(eps: EpsFn, n: int, dims: int, seed: int = SEED) -> torch.Tensor:
    """Ancestral sampling: (STEPS + 1, n, D) float64, row t holding the samples at time t."""
    g = toolkit.generator(seed)
    x = torch.randn(n, dims, generator=g, dtype=torch.float64)
    path = [x]
    for t in range(STEPS, 0, -1):
        beta, alpha = float(BETAS[t - 1]), float(ALPHAS[t - 1])
        mean = (x - beta / math.sqrt(1 - abar(t)) * eps(x, t)) / math.sqrt(alpha)
        noise = torch.randn(n, dims, generator=g, dtype=torch.float64) if t > 1 else 0.0
        x = mean + math.sqrt(beta) * noise
        path.append(x)
    return torch.stack(path[::-1])


def cdf_1d(t: int, x: np.ndarray) -> np.ndarray:
    w, m, v = marginal("1-D", t)
    z = (torch.as_tensor(x, dtype=torch.float64)[:, None] - m[None, :, 0]) / v.sqrt()
    return (w * 0.5 * (1 + torch.erf(z / math.sqrt(2)))).sum(1).numpy()


def wasserstein_1d(samples: np.ndarray, t: int) -> float:
    """W1 between the samples' empirical CDF and the exact CDF of q(x_t): the area between."""
    grid = np.linspace(-8, 8, 4001)
    empirical = np.searchsorted(np.sort(samples), grid, side="right") / len(samples)
    return float(np.trapezoid(np.abs(empirical - cdf_1d(t, grid)), grid))


def mode_coverage(samples: np.ndarray, radius: float = 3.0) -> tuple[np.ndarray, float]:
    """Per-mode counts of 2-D samples within ``radius`` sds of a mode, and the share in none."""
    _, mu, sd = MIXTURES["2-D"]
    dist = np.linalg.norm(samples[:, None, :] - mu.numpy()[None], axis=-1)   # (N, 8)
    near = dist.min(axis=1) < radius * float(sd[0])
    counts = np.bincount(dist.argmin(axis=1)[near], minlength=len(mu))
    return counts, float(1 - near.mean())


@dataclass(frozen=True)
class Result:
    data: str
    t: int
    sampler: str
    abar: float
    forward: np.ndarray        # (SAMPLES, D) x_0 noised to t in closed form
    reverse: np.ndarray        # (SAMPLES, D) the reverse process's samples at t
    grid: np.ndarray           # 1-D: (G,) x grid; 2-D: (G, G, 2) arrow positions
    density: np.ndarray        # 1-D: (G,) q(x_t); 2-D: (G, G) q(x_t) on a grid
    eps_true: np.ndarray       # eps*(x, t) on the grid ((G,) or (G, G, 2)); zeros at t = 0
    eps_used: np.ndarray       # the sampler's eps on the grid
    distance: float            # 1-D: W1(reverse samples, q(x_t)); 2-D: share far from all modes
    modes: np.ndarray          # 2-D: samples near each mode (8,); 1-D: empty


def _grid(data: str):
    if data == "1-D":
        return torch.tensor(GRID_1D)[:, None]
    axis = torch.linspace(-3.5, 3.5, 15, dtype=torch.float64)
    return torch.stack(torch.meshgrid(axis, axis, indexing="xy"), dim=-1).reshape(-1, 2)


def _compute(eps_fns: dict[str, EpsFn], sampler: str, **params) -> Result:
    p = validate(CONTROLS, params)
    data, t = p["data"], p["t"]
    dims = MIXTURES[data][1].shape[1]
    path = _path(eps_fns[data], data, dims)
    g = toolkit.generator(SEED + 1)
    x0 = sample_data(data, SAMPLES, g)
    a = abar(t)
    forward = math.sqrt(a) * x0 + math.sqrt(1 - a) * torch.randn(x0.shape, generator=g, dtype=torch.float64)
    grid = _grid(data)
    with torch.no_grad():
        eps_true = oracle_eps(data, grid, t) if t > 0 else torch.zeros_like(grid)
        eps_used = eps_fns[data](grid, t).double() if t > 0 else torch.zeros_like(grid)
    samples = path[t].numpy()
    if data == "1-D":
        distance, modes = wasserstein_1d(samples[:, 0], t), np.zeros(0, dtype=np.int64)
        shape, density = (-1,), log_density(data, t, grid).exp().numpy()
    else:
        modes, distance = mode_coverage(samples)
        fine = torch.linspace(-3.5, 3.5, 71, dtype=torch.float64)
        points = torch.stack(torch.meshgrid(fine, fine, indexing="xy"), dim=-1).reshape(-1, 2)
        shape, density = (15, 15, 2), log_density(data, t, points).exp().reshape(71, 71).numpy()
    return Result(
        data=data, t=t, sampler=sampler, abar=a, forward=forward.numpy(), reverse=samples,
        grid=grid.numpy().reshape(shape if data == "2-D" else (-1,)), density=density,
        eps_true=eps_true.numpy().reshape(shape), eps_used=eps_used.numpy().reshape(shape),
        distance=distance, modes=modes,
    )


_PATHS: dict[tuple[int, str], tuple[object, torch.Tensor]] = {}


def _path(eps: EpsFn, data: str, dims: int) -> torch.Tensor:
    """The reverse process for (eps, data), run once and kept."""
    key = (id(eps), data)
    cached = _PATHS.get(key)
    if cached is None or cached[0] is not eps:
        with torch.no_grad():
            cached = _PATHS[key] = (eps, reverse(eps, SAMPLES, dims))
    return cached[1]


_ORACLES = {name: functools.partial(oracle_eps, name) for name in DATASETS}


def compute(**params) -> Result:
    """Forward and reverse diffusion at step t, driven by the exact (oracle) noise prediction."""
    return _compute(_ORACLES, "oracle eps*", **params)


def draw(fig, r: Result) -> None:
    ax_f, ax_e, ax_r = panels(fig, 3, left=0.06, wspace=0.3)
    title_f = f"forward q(x_t), t = {r.t}, ᾱ = {r.abar:.3g}"
    if r.data == "1-D":
        bins = np.linspace(-5, 5, 61)
        ax_f.hist(r.forward[:, 0], bins=bins, density=True, color="0.75")
        ax_f.plot(r.grid, r.density, color="black", linewidth=1)
        ax_e.plot(r.grid, r.eps_true, color="black", linewidth=1)
        ax_e.plot(r.grid, r.eps_used, "--", color="tab:red", linewidth=1.2)
        ax_e.set(xlabel="x_t", ylabel="predicted noise ε(x_t, t)",
                 title="ε*: black; sampler's: red dashed")
        ax_r.hist(r.reverse[:, 0], bins=bins, density=True, color="tab:blue", alpha=0.6)
        ax_r.plot(r.grid, r.density, color="black", linewidth=1)
        ax_r.set(xlabel="x_t", title=f"reverse samples at t = {r.t}: W₁ {r.distance:.3f}")
        ax_f.set(xlabel="x_t", ylabel="density", title=title_f)
    else:
        extent = (-3.5, 3.5, -3.5, 3.5)
        for ax, points, color in ((ax_f, r.forward, "0.4"), (ax_r, r.reverse, "tab:blue")):
            ax.imshow(r.density, extent=extent, origin="lower", cmap="Greys", alpha=0.6)
            ax.scatter(points[:, 0], points[:, 1], s=1, color=color, alpha=0.5, linewidths=0)
            ax.set(xlim=extent[:2], ylim=extent[2:])
            ax.set_aspect("equal")
        g = r.grid.reshape(-1, 2)
        for eps, color in ((r.eps_true, "black"), (r.eps_used, "tab:red")):
            e = -eps.reshape(-1, 2)
            ax_e.quiver(g[:, 0], g[:, 1], e[:, 0], e[:, 1], color=color, angles="xy", scale=25, width=0.004)
        ax_e.set(xlim=extent[:2], ylim=extent[2:], title="-ε (towards the data): black ε*, red sampler")
        ax_e.set_aspect("equal")
        ax_f.set(title=title_f)
        ax_r.set(title=f"reverse samples, t = {r.t}: {100 * r.distance:.1f} % off-mode")


def readouts(r: Result) -> dict[str, str]:
    out = {
        "sampler": r.sampler,
        "q(x_t | x_0)": f"N({math.sqrt(r.abar):.4f} x_0, {1 - r.abar:.4f} I)",
        "signal sd / noise sd": f"{math.sqrt(r.abar):.3f} / {math.sqrt(1 - r.abar):.3f}",
    }
    if r.data == "1-D":
        out["reverse samples vs q(x_t)"] = f"W₁ = {r.distance:.4f} ({SAMPLES} samples)"
    else:
        out["reverse samples off every mode"] = f"{100 * r.distance:.1f} % (beyond 3 sd)"
        out["samples per mode"] = " ".join(str(int(c)) for c in r.modes)
    return out


def explorer(models: dict[str, EpsFn] | None = None, name: str = "learned ε") -> Explorer:
    """The explorer driven by trained noise predictors ``{"1-D": eps, "2-D": eps}``, each
    ``eps(x, t)`` for (N, D) float64 points and an int t in 1..STEPS; missing ones use eps*."""
    if models is None:
        return EXPLORER
    unknown = set(models) - set(DATASETS)
    if unknown:
        raise ValueError(f"models are keyed by data set {list(DATASETS)}, got {sorted(unknown)}")
    eps_fns = {**_ORACLES, **models}
    return Explorer("Forward and reverse diffusion", CONTROLS, functools.partial(_compute, eps_fns, name),
                    draw, readouts, frame_control="t", figsize=(9.0, 3.1), frame_count=13)


EXPLORER = Explorer("W17 · Forward and reverse diffusion", CONTROLS, compute, draw, readouts,
                    frame_control="t", figsize=(9.0, 3.1), frame_count=13)


def show(models: dict[str, EpsFn] | None = None, **params):
    """Display the explorer (with trained noise predictors, or the exact one)."""
    return _show(explorer(models), **params)
