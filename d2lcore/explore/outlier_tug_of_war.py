"""W12 Outlier tug-of-war: the same data fitted under four beliefs about the noise.

A fixed, seeded cloud of points lies around a straight line with Gaussian noise (sd 1). The
reader adds up to five outliers, drags them away from the line and along it, and chooses which
losses fit a line: squared error (Gaussian noise), absolute error (Laplace), Huber, and the
Student-t negative log-likelihood. Three panels show the fitted lines; the residuals with the
density each loss implies (its scale fitted to those residuals, log axis so that -log p, the
loss, is visible as the curve's shape); and the influence curves d(-log p)/dr, with each
outlier's own pull marked on them.

Aha: choosing a loss is choosing a belief about the noise. Under a Gaussian belief an outlier
pulls in proportion to its residual, so dragging it away drags the line without bound; L1 and
Huber cap the pull, so beyond a point the line stops moving; the Student-t pull even falls back
towards zero, so a far outlier is all but ignored.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from matplotlib import ticker
from matplotlib.collections import LineCollection

from d2lcore import likelihood
from d2lcore.explore.toolkit import Explorer, Slider, Toggle, panels, show as _show, validate

LOSSES = ("mse", "l1", "huber", "student_t")
SHORT = {"mse": "MSE", "l1": "L1", "huber": "Huber", "student_t": "Student-t"}
NAMES = {"mse": "MSE (Gaussian)", "l1": "L1 (Laplace)", "huber": "Huber", "student_t": "Student-t"}
COLORS = {"mse": "tab:blue", "l1": "tab:green", "huber": "tab:orange", "student_t": "tab:red"}
MAX_OUTLIERS = 5

# The data: N points on y = TRUE_INTERCEPT + TRUE_SLOPE x with unit Gaussian noise, so every
# residual is already in units of the noise sd and the registry's unit scales apply.
N_POINTS, TRUE_SLOPE, TRUE_INTERCEPT, X_MAX = 30, 0.5, 1.0, 10.0
_rng = np.random.default_rng(60)  # a draw whose clean fit is close to the truth
DATA_X = np.sort(_rng.uniform(0.0, X_MAX, N_POINTS))
DATA_Y = TRUE_INTERCEPT + TRUE_SLOPE * DATA_X + _rng.standard_normal(N_POINTS)
OUTLIER_DX = np.array([0.0, -0.4, 0.4, -0.2, 0.2])       # outliers cluster around the chosen x
OUTLIER_NOISE = 0.5 * _rng.standard_normal(MAX_OUTLIERS)  # ... and scatter a little in y
del _rng

# Student-t fits with the registry's own df and scale (scale 1 = the noise sd).
T_DF = likelihood.get("student_t").params["df"]
T_SCALE = likelihood.get("student_t").params["scale"]

RESIDUAL_EDGES = np.arange(-6.0, 27.0, 1.0)        # histogram bins, fixed so frames compare
RESIDUAL_GRID = np.linspace(-6.0, 26.0, 161)       # where the implied densities are drawn
INFLUENCE_GRID = np.linspace(-22.0, 22.0, 221)     # where the influence curves are drawn
LOG_FLOOR = -4.0                                   # bottom of the log10-density axis
LOG_TICKS = (-4, -2, 0)
LOG_LABELS = ("1e-4", "0.01", "1")

MAX_ITER, TOL = 500, 1e-12

CONTROLS = (
    Slider("outliers", "number of outliers", 0, MAX_OUTLIERS, 1, 3, integer=True),
    Slider("distance", "outliers' distance above the line (noise sd)", 0.0, 20.0, 0.5, 8.0),
    Slider("outlier_x", "outliers' position x", 0.0, X_MAX, 0.5, 9.0),
    Slider("delta", "Huber delta (noise sd)", 0.2, 5.0, 0.1, 1.0),
    Toggle("mse", "fit MSE", True),
    Toggle("l1", "fit L1", True),
    Toggle("huber", "fit Huber", True),
    Toggle("student_t", f"fit Student-t (df = {T_DF:g})", True),
)


@dataclass(frozen=True)
class Result:
    x: np.ndarray                 # all points, outliers last
    y: np.ndarray
    outlier: np.ndarray           # bool mask of the outliers
    losses: tuple                 # names of the selected losses, in LOSSES order
    slopes: np.ndarray            # one per selected loss
    intercepts: np.ndarray
    iterations: np.ndarray        # IRLS iterations used (0 for the closed-form fits)
    converged: np.ndarray         # bool per fit
    delta: float
    reference: str                # the fit whose residuals the histogram shows ("" if none)
    residuals: np.ndarray         # y - fitted line of the reference fit
    scales: np.ndarray            # each family's scale fitted (maximum likelihood) to those residuals
    residual_nll: np.ndarray      # mean -log p of those residuals under each fitted density, nats
    density_grid: np.ndarray
    densities: np.ndarray         # (losses, grid): each implied density with its fitted scale
    influence_grid: np.ndarray
    influence: np.ndarray         # (losses, grid): d(-log p)/dr at unit scale, nats per sd
    outlier_residuals: np.ndarray  # (losses, outliers): each outlier's residual under each fit
    outlier_pull: np.ndarray       # (losses, outliers): psi at those residuals, the outliers' pull


def data(outliers: int, distance: float, outlier_x: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The fixed cloud plus the first ``outliers`` outliers, ``distance`` sd above the line."""
    ox = outlier_x + OUTLIER_DX[:outliers]
    oy = TRUE_INTERCEPT + TRUE_SLOPE * ox + distance + OUTLIER_NOISE[:outliers]
    mask = np.r_[np.zeros(N_POINTS, bool), np.ones(outliers, bool)]
    return np.r_[DATA_X, ox], np.r_[DATA_Y, oy], mask


def loss_params(name: str, delta: float) -> dict:
    """The registry parameters each fit uses: unit noise scale, the chosen Huber delta."""
    return {"huber": {"delta": delta}, "student_t": {"df": T_DF, "scale": T_SCALE}}.get(name, {})


def _psi_over_u(name: str, u: np.ndarray, delta: float) -> np.ndarray:
    """psi(u)/u for the unit-scale robust losses (Huber, Student-t): the weights of iteratively
    reweighted least squares, for the line and for the scale alike."""
    if name == "huber":
        return np.minimum(1.0, delta / np.maximum(np.abs(u), 1e-300))
    return (T_DF + 1) / (T_DF + u**2)


def _irls(name: str, design: np.ndarray, y: np.ndarray, start: np.ndarray, delta: float):
    coef = start
    for it in range(1, MAX_ITER + 1):
        # the stationarity condition sum psi(r_i) x_i = 0 is a weighted normal equation
        w = _psi_over_u(name, (y - design @ coef) / (T_SCALE if name == "student_t" else 1.0), delta)
        wd = design * w[:, None]
        new = np.linalg.solve(design.T @ wd, wd.T @ y)
        step = np.max(np.abs(new - coef))
        coef = new
        if step <= TOL * (1.0 + np.max(np.abs(coef))):
            return coef, it, True
    return coef, MAX_ITER, False


def _least_absolute(design: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Exact L1 fit: some minimiser passes through two data points, so try every pair."""
    i, j = np.triu_indices(len(y), 1)
    x = design[:, 1]
    dx = x[j] - x[i]
    ok = np.abs(dx) > 1e-9
    i, j, dx = i[ok], j[ok], dx[ok]
    slope = (y[j] - y[i]) / dx
    intercept = y[i] - slope * x[i]
    cost = np.abs(y[None, :] - intercept[:, None] - slope[:, None] * x[None, :]).sum(1)
    best = np.argmin(cost)
    return np.array([intercept[best], slope[best]])


def fit(name: str, x: np.ndarray, y: np.ndarray, delta: float):
    """(intercept, slope), iterations, converged for one loss, deterministic, in float64."""
    design = np.c_[np.ones_like(x), x]
    least_squares = np.linalg.lstsq(design, y, rcond=None)[0]
    if name == "mse":
        return least_squares, 0, True
    if name == "l1":
        return _least_absolute(design, y), 0, True
    if name == "huber":
        return _irls("huber", design, y, least_squares, delta)
    # Student-t's loss is not convex: start it from the exact L1 fit (robust, and free of
    # parameters, so the Huber delta cannot move it), not from least squares, which the
    # outliers own.
    return _irls("student_t", design, y, _least_absolute(design, y), delta)


def implied_density(name: str, scale, delta: float):
    """The noise distribution a loss assumes, centred at 0 with the given scale(s)."""
    zero = torch.zeros((), dtype=torch.float64)
    if name == "mse":
        return likelihood.get("mse").distribution(zero, sigma=scale)
    if name == "l1":
        return likelihood.get("l1").distribution(zero, b=scale)
    if name == "huber":
        return likelihood.Huber(zero, delta, scale)
    return likelihood.get("student_t").distribution(zero, df=T_DF, scale=scale)


def fit_scale(name: str, residuals: np.ndarray, delta: float) -> float:
    """Maximum-likelihood scale s of a loss's density, -log p(r; s) = f(r / s) + log s.

    Gaussian and Laplace have closed forms (root mean square, mean absolute residual). For
    Huber and Student-t, setting the derivative in s to zero gives mean(w(r/s) r^2) = s^2 with
    w = psi(u)/u, which the fixed-point iteration s^2 <- mean(w(r/s) r^2) solves (the EM
    update for Student-t)."""
    r = np.asarray(residuals, dtype=float)
    if name == "mse":
        return float(np.sqrt(np.mean(r**2)))
    if name == "l1":
        return float(np.mean(np.abs(r)))
    s = float(np.sqrt(np.mean(r**2)))
    for _ in range(MAX_ITER):
        new = float(np.sqrt(np.mean(_psi_over_u(name, r / s, delta) * r**2)))
        done = abs(new - s) <= TOL * s
        s = new
        if done:
            break
    return s


def influence(name: str, r: np.ndarray, delta: float) -> np.ndarray:
    """psi(r) = d(-log p)/dr at unit noise scale: autograd through the registry loss, times the
    registry's multiplier (so MSE's r^2 becomes the Gaussian's r^2/2)."""
    pair = likelihood.get(name)
    params = loss_params(name, delta)
    target = torch.as_tensor(r, dtype=torch.float64).clone().requires_grad_(True)
    per_point_mean = pair.loss(torch.zeros_like(target), target, **params)
    (grad,) = torch.autograd.grad(per_point_mean * len(r), target)  # the mean's 1/n undone
    return pair.multiplier(**params) * grad.numpy()


def compute(**params) -> Result:
    """Data, fits, residual densities and influence curves for the given controls (see CONTROLS)."""
    p = validate(CONTROLS, params)
    x, y, mask = data(p["outliers"], p["distance"], p["outlier_x"])
    delta = p["delta"]
    chosen = tuple(name for name in LOSSES if p[name])
    fits = [fit(name, x, y, delta) for name in chosen]
    coefs = np.array([f[0] for f in fits]).reshape(len(chosen), 2)

    # The histogram shows the residuals of the most robust chosen fit: there the outliers stand
    # apart from the bulk, and each family's scale is fitted to that same set of residuals.
    reference = chosen[-1] if chosen else ""
    residuals = y - (coefs[-1, 0] + coefs[-1, 1] * x) if chosen else np.zeros(0)
    scales = np.array([fit_scale(name, residuals, delta) for name in chosen])
    r_torch = torch.as_tensor(residuals, dtype=torch.float64)
    grid = torch.as_tensor(RESIDUAL_GRID, dtype=torch.float64)
    k, n_grid, n_out = len(chosen), RESIDUAL_GRID.size, int(mask.sum())
    out_r = np.array([y[mask] - (b + a * x[mask]) for b, a in coefs]).reshape(k, n_out)
    # influence on the drawing grid and at the outliers' residuals, in one autograd pass per loss
    psi = np.array([influence(name, np.r_[INFLUENCE_GRID, res], delta) for name, res in zip(chosen, out_r)])
    psi = psi.reshape(k, INFLUENCE_GRID.size + n_out)
    dists = [implied_density(name, s, delta) for name, s in zip(chosen, scales)]
    return Result(
        x=x, y=y, outlier=mask, losses=chosen,
        slopes=coefs[:, 1].copy(), intercepts=coefs[:, 0].copy(),
        iterations=np.array([f[1] for f in fits], dtype=int),
        converged=np.array([f[2] for f in fits], dtype=bool),
        delta=delta, reference=reference, residuals=residuals, scales=scales,
        residual_nll=np.array([float(-d.log_prob(r_torch).mean()) for d in dists]),
        density_grid=RESIDUAL_GRID,
        densities=np.array([d.log_prob(grid).exp().numpy() for d in dists]).reshape(k, n_grid),
        influence_grid=INFLUENCE_GRID,
        influence=psi[:, :INFLUENCE_GRID.size].copy(),
        outlier_residuals=out_r,
        outlier_pull=psi[:, INFLUENCE_GRID.size:].copy(),
    )


def residual_histogram(r: Result) -> np.ndarray:
    """Histogram of the reference residuals as a density, out-of-range values in the end bins."""
    clipped = np.clip(r.residuals, RESIDUAL_EDGES[0], RESIDUAL_EDGES[-1])
    counts, _ = np.histogram(clipped, RESIDUAL_EDGES)
    return counts / max(len(r.residuals), 1) / np.diff(RESIDUAL_EDGES)


def log_density(p: np.ndarray) -> np.ndarray:
    """log10 of a density for the log axis, empty bins and vanishing tails just below its floor."""
    return np.log10(np.maximum(p, 10 ** (LOG_FLOOR - 1)))


def _curves(ax, x, ys, names) -> None:
    """One curve per loss in its colour, as a single artist (each artist costs a live update time)."""
    if len(names):
        ax.add_collection(LineCollection([np.column_stack([x, y]) for y in ys],
                                         colors=[COLORS[name] for name in names]))


def draw(fig, r: Result) -> None:
    ax_fit, ax_res, ax_psi = panels(fig, 3, left=0.06, right=0.99, wspace=0.3, bottom=0.15, top=0.9)

    # (a) the data and the fitted lines; the key of loss colours lives in (c), where there is room
    ax_fit.plot(r.x[~r.outlier], r.y[~r.outlier], "o", color="0.55", markersize=3.5)
    if r.outlier.any():
        ax_fit.plot(r.x[r.outlier], r.y[r.outlier], "D", color="tab:purple", markersize=5)
    line_x = np.array([-0.5, X_MAX + 0.5])
    ax_fit.plot(line_x, TRUE_INTERCEPT + TRUE_SLOPE * line_x, ":", color="black", linewidth=1)
    _curves(ax_fit, line_x, [b + a * line_x for a, b in zip(r.slopes, r.intercepts)], r.losses)
    ax_fit.set(xlim=tuple(line_x), xticks=(0, 5, 10), xlabel="x", ylabel="y")
    ax_fit.yaxis.set_major_locator(ticker.MaxNLocator(4))  # few tick labels: text is the cost
    ax_fit.set_title("fitted lines (\u25c6 outliers, \u00b7\u00b7\u00b7 truth)" if r.losses
                     else "no loss selected: data only", fontsize=9, y=1.0)

    # (b) residuals of the reference fit with each loss's implied density, on a log axis, where
    # each density's shape is minus its loss. log10 on a linear axis: a log scale costs more.
    ax_res.set(xlim=(RESIDUAL_EDGES[0], RESIDUAL_EDGES[-1]), ylim=(LOG_FLOOR, 0.3), yticks=LOG_TICKS,
               yticklabels=LOG_LABELS, xlabel="residual r (noise sd)", ylabel="density (log axis)")
    if r.losses:
        ax_res.stairs(log_density(residual_histogram(r)), RESIDUAL_EDGES, fill=True, baseline=LOG_FLOOR,
                      color="0.8")
        _curves(ax_res, r.density_grid, log_density(r.densities), r.losses)
        ax_res.set_title(f"{SHORT[r.reference]}-fit residuals; p \u221d exp(-loss)", fontsize=9, y=1.0)
    else:
        ax_res.set_title("no fit, no residuals", fontsize=9, y=1.0)

    # (c) influence curves and each outlier's pull
    _curves(ax_psi, r.influence_grid, r.influence, r.losses)
    if r.outlier_residuals.size:
        colors = np.repeat([COLORS[name] for name in r.losses], r.outlier_residuals.shape[1])
        ax_psi.scatter(r.outlier_residuals.ravel(), r.outlier_pull.ravel(), s=16, c=colors, marker="D", zorder=3)
    ax_psi.set(xlim=(INFLUENCE_GRID[0], INFLUENCE_GRID[-1]), ylim=(-3.0, 3.0), xlabel="residual r (noise sd)",
               ylabel="pull d(-log p)/dr (nats/sd)", xticks=(-20, 0, 20), yticks=(-2, 0, 2))
    ax_psi.set_title("influence (\u25c6 the outliers' pull)", fontsize=9, y=1.0)
    # A key of coloured names instead of a legend: a legend box costs about 13 ms per update.
    for row, name in enumerate(reversed(r.losses)):
        ax_psi.text(0.98, 0.04 + 0.075 * row, NAMES[name], color=COLORS[name], fontsize=7,
                    ha="right", va="bottom", transform=ax_psi.transAxes)


def readouts(r: Result) -> dict[str, str]:
    out = {"truth": f"slope {TRUE_SLOPE:+.3f}, intercept {TRUE_INTERCEPT:+.3f}"}
    for name, a, b in zip(r.losses, r.slopes, r.intercepts):
        out[NAMES[name]] = f"slope {a:+.3f}, intercept {b:+.3f}"
    for name, s, nll in zip(r.losses, r.scales, r.residual_nll):
        out[f"{NAMES[name]} density on the residuals"] = f"scale {s:.3f} sd, mean -log p {nll:.3f} nats"
    if not r.losses:
        out["fits"] = "no loss selected"
    return out


EXPLORER = Explorer("W12 · Outlier tug-of-war", CONTROLS, compute, draw, readouts,
                    frame_control="distance", figsize=(9.0, 3.3))


def show(**params):
    """Display the explorer: live in a notebook, static when building the book."""
    return _show(EXPLORER, **params)
