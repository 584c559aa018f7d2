"""W13 Signal through depth: the variance of a signal multiplies layer by layer.

A stack of ``depth`` square layers h_l = phi(z_l), z_l = W_l h_{l-1}, of width N_UNITS = 200 and
without biases, is applied to a batch of BATCH = 32 standard-normal inputs h_0 (at this width He's
standard deviation is exactly s = 0.1, one of the static view's frames). The weights are
drawn once from a private generator (a pool of standard-normal and one of uniform matrices) and
scaled by the chosen initialisation:

    pytorch   U(-1/sqrt(n), 1/sqrt(n))          Var[w] = 1/(3n)   (nn.Linear's default weights)
    xavier    U(-sqrt(3/n), sqrt(3/n))          Var[w] = 2/(n_in + n_out) = 1/n (Glorot & Bengio 2010)
    he        N(0, 2/n)                         Var[w] = 2/n      (He et al. 2015)
    normal    N(0, s^2), s = 10^log10_s         Var[w] = s^2

"he" and "normal" share the normal pool and "pytorch" and "xavier" the uniform one, so "normal"
with s = sqrt(2/n) is exactly "he". Backwards, the gradient of L = sum(r * h_depth) for a fixed
standard-normal r is propagated by hand, dL/dh_{l-1} = (dL/dh_l * phi'(z_l)) W_l (the tests
check it against autograd).

The variance recursion (section 4.5): with independent zero-mean weights, E[z_{l+1}^2] =
n Var[w] E[h_l^2], and for ReLU E[h^2] = E[z^2]/2, so the activations' second moment is
multiplied by n Var[w]/2 per layer: 1 for He, 1/2 for Xavier, 1/6 for the default, n s^2/2 for
N(0, s^2). Backwards the gradient's second moment gets the same factor (square layers,
E[relu'(z)^2] = 1/2). At width n the factor is itself random: for one input and Gaussian
weights it is (factor) * chi^2-like with relative variance 5/n, so log(second moment) takes a
random walk with a step of standard deviation sqrt(5/n), the spread the tests allow. For tanh
the same recursion holds while the signal is small (tanh'(0) = 1); for the sigmoid,
sigmoid' <= 1/4 bounds the gradient's factor by n Var[w]/16.

Everything is computed in float64, which neither overflows nor underflows over the controls'
range; the readouts say where float32, the precision networks are trained in, would (values
beyond 3.4e38, or below its smallest normal number 1.2e-38). Plotted values are clamped to
[1e-300, 1e300] all the same, and a float64 overflow would be reported, not drawn as NaN.

Aha: variance multiplies layer by layer; He keeps a ReLU signal alive, too small a scale kills
it, too large a scale explodes it, and the gradients follow the same law backwards.
"""
from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import numpy as np
import torch
from matplotlib.ticker import MaxNLocator

from d2lcore.explore import toolkit
from d2lcore.explore.toolkit import Choice, Explorer, Slider, panels, show as _show, validate

N_UNITS = 200
BATCH = 32
MAX_DEPTH = 100
BINS = 40
RELU_RANGE = 5.0  # ReLU histograms: activation / its layer's std, from 0 to this (the rest is left out)
FLOAT32_MAX = float(np.finfo(np.float32).max)     # 3.4e38
FLOAT32_TINY = float(np.finfo(np.float32).tiny)   # 1.2e-38, the smallest normal float32
HUGE, TINY = 1e300, 1e-300                         # what is plotted is clamped to this range
ACTIVATIONS = ("relu", "tanh", "sigmoid")
INITS = ("pytorch", "xavier", "he", "normal")
SEEDS = {"normal": 13, "uniform": 14, "data": 15}

CONTROLS = (
    Choice("activation", "activation", ACTIVATIONS, "relu"),
    Slider("depth", "depth (layers)", 1, MAX_DEPTH, 1, 50, integer=True),
    Choice("init", "initialisation", INITS, "he"),
    Slider("log10_s", "log10 s, for normal: N(0, s²)", -3.0, 1.0, 0.05, -2.0),
)


def weight_variance(init: str, s: float, n: int = N_UNITS) -> float:
    """Var[w] of each scheme for a square layer of width n."""
    return {"pytorch": 1 / (3 * n), "xavier": 2 / (n + n), "he": 2 / n, "normal": s**2}[init]


def second_moment_factor(activation: str, variance: float, n: int = N_UNITS) -> float:
    """n Var[w] E[phi'(z)^2] near z = 0: the per-layer factor of the second moment, exact in
    expectation for ReLU (forwards and backwards), the small-signal value for tanh, and an upper
    bound on the gradient's factor for the sigmoid (sigmoid' <= 1/4)."""
    return n * variance * {"relu": 0.5, "tanh": 1.0, "sigmoid": 1 / 16}[activation]


@functools.cache
def _pool(kind: str) -> torch.Tensor:
    """MAX_DEPTH unscaled weight matrices, standard normal or uniform on (-1, 1), drawn once
    when first used (32 MB each, float64)."""
    g = toolkit.generator(SEEDS[kind])
    shape = (MAX_DEPTH, N_UNITS, N_UNITS)
    if kind == "normal":
        return torch.randn(shape, generator=g, dtype=torch.float64)
    return torch.rand(shape, generator=g, dtype=torch.float64) * 2 - 1


@functools.cache
def _inputs() -> tuple[torch.Tensor, torch.Tensor]:
    """The input batch h_0 and the direction r of the loss L = sum(r * h_depth)."""
    g = toolkit.generator(SEEDS["data"])
    return (torch.randn(BATCH, N_UNITS, generator=g, dtype=torch.float64),
            torch.randn(BATCH, N_UNITS, generator=g, dtype=torch.float64))


def weights(init: str, s: float) -> tuple[torch.Tensor, float]:
    """The (unscaled) pool an initialisation draws from and the factor that scales it."""
    n = N_UNITS
    if init in ("pytorch", "xavier"):
        bound = 1 / math.sqrt(n) if init == "pytorch" else math.sqrt(3 / n)
        return _pool("uniform"), bound
    return _pool("normal"), (math.sqrt(2 / n) if init == "he" else s)


def _phi(activation: str, z: torch.Tensor) -> torch.Tensor:
    if activation == "relu":
        return torch.relu(z)
    return torch.tanh(z) if activation == "tanh" else torch.sigmoid(z)


def _slope(activation: str, h: torch.Tensor) -> torch.Tensor:
    """phi'(z), written in terms of h = phi(z)."""
    if activation == "relu":
        return (h > 0).to(h.dtype)
    return 1 - h * h if activation == "tanh" else h * (1 - h)


def _std(a: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
    """Standard deviation of each row of a (rows, ...) tensor and whether the row is finite.
    Each row is divided by its largest magnitude first, so that no square overflows (or
    underflows) even where the values themselves are extreme. (NumPy's std: four times faster
    here than torch's.)"""
    a = a.reshape(len(a), -1).numpy()
    top = np.abs(a).max(axis=1)
    finite = np.isfinite(top)
    safe = np.where((top > 0) & finite, top, 1.0)
    with np.errstate(invalid="ignore"):  # a non-finite row gives nan here; the caller replaces it
        return safe * (a / safe[:, None]).std(axis=1, ddof=1), finite


def forward_backward(activation: str, init: str, s: float, depth: int):
    """Activations h_1..h_depth and gradients dL/dh_1..dL/dh_depth, each (depth, BATCH, N_UNITS).

    Nothing is checked here: ``compute`` finds any value that float64 could not hold."""
    pool, scale = weights(init, s)
    h, r = _inputs()
    acts = torch.empty(depth, BATCH, N_UNITS, dtype=torch.float64)
    for layer in range(depth):
        h = acts[layer] = _phi(activation, (h @ pool[layer].T) * scale)   # (B, n)
    slopes = _slope(activation, acts)                                     # (depth, B, n)
    grads = torch.empty_like(acts)
    grads[-1] = r
    for layer in range(depth - 1, 0, -1):                                  # dL/dh_{l-1} from dL/dh_l
        grads[layer - 1] = ((grads[layer] * slopes[layer]) @ pool[layer]) * scale   # (B, n)
    return acts, grads


@dataclass(frozen=True)
class Result:
    activation: str
    depth: int
    init: str
    s: float                       # the standard deviation of the weights
    weight_variance: float
    factor: float                  # predicted per-layer factor of the second moment (see the docstring)
    layers: np.ndarray             # 1..depth
    act_std: np.ndarray            # std of h_l over the batch and the units, clamped to [TINY, HUGE]
    grad_std: np.ndarray           # std of dL/dh_l, clamped likewise
    act_predicted: np.ndarray      # variance recursion from layer 1 (empty where it predicts nothing)
    grad_predicted: np.ndarray     # the same backwards from the top layer
    log_spread: float              # sd of log(std ratio) over the stack at this width (ReLU), else 0
    hist_layers: np.ndarray        # layers whose histograms are shown
    hist_edges: np.ndarray         # (BINS + 1,)
    hist_fractions: np.ndarray     # (len(hist_layers), BINS): fraction of the values per bin
    zero_fraction: np.ndarray      # fraction of exact zeros at those layers (ReLU)
    float64_overflow: str          # "" or what overflowed float64 (never, over the controls' range)
    act_float32: str               # where the activations leave float32's normal range
    grad_float32: str

    @property
    def act_ratio(self) -> float:
        return float(self.act_std[-1] / self.act_std[0])

    @property
    def grad_ratio(self) -> float:
        """std of the gradient at layer 1 over that at the top layer."""
        return float(self.grad_std[0] / self.grad_std[-1])


def _float32_status(std: np.ndarray, what: str) -> str:
    big = np.nonzero(std > FLOAT32_MAX)[0]
    small = np.nonzero(std < FLOAT32_TINY)[0]
    if what == "gradients":  # gradients travel backwards: report the layer nearest the top
        big, small = big[::-1], small[::-1]
    if big.size:
        return f"would overflow float32 (std above 3.4e38) at layer {big[0] + 1}"
    if small.size:
        return f"would underflow float32 (std below 1.2e-38) at layer {small[0] + 1}"
    return "within float32's range at every layer"


def _hist_layers(depth: int) -> np.ndarray:
    return np.unique(np.round(np.array([1, depth / 3, 2 * depth / 3, depth])).astype(int).clip(1, depth))


def compute(**params) -> Result:
    """Activations and gradients through the stack, their histograms and the predictions."""
    p = validate(CONTROLS, params)
    activation, depth, init = p["activation"], p["depth"], p["init"]
    s_normal = 10.0 ** p["log10_s"]
    var = weight_variance(init, s_normal)
    factor = second_moment_factor(activation, var)
    acts, grads = forward_backward(activation, init, s_normal, depth)
    layers = np.arange(1, depth + 1)
    act_std, act_finite = _std(acts)
    grad_std, grad_finite = _std(grads)
    # Over the controls' range float64 holds every value (tested); should one overflow, the
    # layers from there on are drawn at the clamp and the readouts say what happened.
    overflow = ""
    if not act_finite.all():
        layer = int(np.argmin(act_finite)) + 1
        overflow = f"float64 overflows at layer {layer}: nothing beyond it is defined"
        act_std[layer - 1:] = HUGE
        grad_std[:] = HUGE
    elif not grad_finite.all():
        layer = int(np.nonzero(~grad_finite)[0][-1]) + 1
        overflow = f"the gradient overflows float64 at layer {layer}"
        grad_std[:layer] = HUGE
    act_std, grad_std = np.clip(act_std, TINY, HUGE), np.clip(grad_std, TINY, HUGE)

    empty = np.zeros(0)
    log_f = 0.5 * math.log(factor)  # per layer, for the standard deviation
    act_predicted = grad_predicted = empty
    if activation in ("relu", "tanh"):
        act_predicted = np.clip(act_std[0] * np.exp(log_f * (layers - 1)), TINY, HUGE)
    if not overflow:
        grad_predicted = np.clip(grad_std[-1] * np.exp(log_f * (depth - layers)), TINY, HUGE)
    log_spread = 0.5 * math.sqrt(5 * (depth - 1) / N_UNITS) if activation == "relu" else 0.0

    shown = _hist_layers(depth)
    if activation == "relu":
        edges = np.linspace(0.0, RELU_RANGE, BINS + 1)
    else:
        edges = np.linspace(-1.0 if activation == "tanh" else 0.0, 1.0, BINS + 1)
    fractions = np.zeros((len(shown), BINS))
    zeros = np.zeros(len(shown))
    for i, layer in enumerate(shown):
        if not act_finite[layer - 1]:
            continue  # beyond a float64 overflow: nothing to show
        values = acts[layer - 1].flatten()
        if activation == "relu":
            zeros[i] = float((values == 0).double().mean())
            positive = values[values > 0]
            values = positive / float(act_std[layer - 1]) if positive.numel() else positive
        # Bounded activations fill their range; ReLU values beyond RELU_RANGE std are left out.
        counts = np.histogram(values.numpy(), edges)[0]
        fractions[i] = counts / values.numel() * (1 - zeros[i]) if values.numel() else 0.0

    return Result(
        activation=activation, depth=depth, init=init, s=math.sqrt(var), weight_variance=var,
        factor=factor, layers=layers, act_std=act_std, grad_std=grad_std,
        act_predicted=act_predicted, grad_predicted=grad_predicted, log_spread=log_spread,
        hist_layers=shown, hist_edges=edges, hist_fractions=fractions, zero_fraction=zeros,
        float64_overflow=overflow,
        act_float32=_float32_status(act_std, "activations"),
        grad_float32=_float32_status(grad_std, "gradients"),
    )


COLORS = ("tab:blue", "tab:green", "tab:orange", "tab:red")


def draw(fig, r: Result) -> None:
    ax_h, ax_s = panels(fig, 2, left=0.085, right=0.98, wspace=0.24)
    # Labels as text, not legends: a legend costs a fifth of a redraw.
    top = max(float(r.hist_fractions.max()), 1e-3)
    for i, (color, layer, fractions, zeros) in enumerate(zip(COLORS, r.hist_layers, r.hist_fractions,
                                                              r.zero_fraction)):
        ax_h.stairs(fractions, r.hist_edges, color=color, linewidth=1.4)
        label = f"layer {layer}" + (f" ({zeros:.0%} zeros)" if r.activation == "relu" else "")
        ax_h.text(0.98, 0.95 - 0.08 * i, label, color=color, fontsize=7, ha="right", va="top",
                  transform=ax_h.transAxes)
    xlabel = {"relu": "activation / its layer's std (positive values)", "tanh": "activation tanh(z)",
              "sigmoid": "activation sigmoid(z)"}[r.activation]
    ax_h.set(xlim=(r.hist_edges[0], r.hist_edges[-1]), ylim=(0, 1.15 * top), xlabel=xlabel,
             ylabel="fraction of values", title=f"{r.activation}, {r.init}: activations at a few layers")
    ax_h.yaxis.set_major_locator(MaxNLocator(3))
    ax_h.xaxis.set_major_locator(MaxNLocator(5))

    # log10 values on linear axes with power-of-ten labels: a log scale costs more to draw.
    ax_s.plot(r.layers, np.log10(r.act_std), color="tab:blue", linewidth=1.6)
    if not r.float64_overflow:
        ax_s.plot(r.layers, np.log10(r.grad_std), color="tab:orange", linewidth=1.6)
    if r.act_predicted.size:
        ax_s.plot(r.layers, np.log10(r.act_predicted), ":", color="tab:blue", linewidth=1.2)
    if r.grad_predicted.size:
        ax_s.plot(r.layers, np.log10(r.grad_predicted), ":", color="tab:orange", linewidth=1.2)
    dotted = "dotted: variance recursion" if r.activation != "sigmoid" else "dotted: bound σ' ≤ 1/4"
    for i, (text, color) in enumerate((("activation std", "tab:blue"), ("gradient std", "tab:orange"),
                                       (dotted, "0.3"))):
        ax_s.text(0.02, 0.04 + 0.08 * (2 - i), text, color=color, fontsize=7, transform=ax_s.transAxes)
    values = np.concatenate([np.log10(r.act_std), np.log10(r.grad_std)])
    lo, hi = float(values.min()), float(values.max())
    lo, hi = min(lo, -1.0), max(hi, 1.0)
    for edge, text in ((math.log10(FLOAT32_MAX), "float32 max"), (math.log10(FLOAT32_TINY), "float32 min")):
        if lo - 2 <= edge <= hi + 2:
            ax_s.axhline(edge, color="0.6", linewidth=0.8, linestyle="--")
            ax_s.text(r.layers[0], edge, text, fontsize=7, color="0.4", va="bottom")
            lo, hi = min(lo, edge), max(hi, edge)
    pad = 0.08 * (hi - lo)
    ax_s.set_ylim(lo - pad, hi + pad)
    ax_s.yaxis.set_major_locator(MaxNLocator(5, integer=True))
    ticks = ax_s.get_yticks()
    ax_s.set_yticks(ticks)
    ax_s.set_yticklabels([f"1e{int(t)}" for t in ticks])
    ax_s.set_xlim(0.5, max(r.depth, 2) + 0.5)
    ax_s.xaxis.set_major_locator(MaxNLocator(4, integer=True))
    ax_s.set(xlabel="layer", ylabel="standard deviation (log scale)",
             title=f"Var[w] = {r.weight_variance:.3g}: per-layer factor {r.factor:.3g}")


def readouts(r: Result) -> dict[str, str]:
    names = {"pytorch": "PyTorch default U(±1/√n), 1/(3n)", "xavier": "Xavier U(±√(3/n)), 2/(n_in + n_out)",
             "he": "He N(0, 2/n), 2/n", "normal": f"N(0, s²) with s = {r.s:.4g}, s²"}
    out = {"weights": f"{names[r.init]} = {r.weight_variance:.4g} (n = {N_UNITS})"}
    if r.activation == "relu":
        out["predicted factor per layer"] = (f"second moment × n·Var[w]/2 = {r.factor:.4g}, forwards and "
                                             f"backwards; at this width log(std ratio) spreads by ±{r.log_spread:.2f}")
    elif r.activation == "tanh":
        out["predicted factor per layer"] = f"second moment × n·Var[w] = {r.factor:.4g} while the signal is small"
    else:
        out["predicted factor per layer"] = f"gradient's second moment × at most n·Var[w]/16 = {r.factor:.4g}"
    if r.float64_overflow:
        out["overflow"] = r.float64_overflow
    else:
        out["activation std"] = (f"layer 1: {r.act_std[0]:.3g}, layer {r.depth}: {r.act_std[-1]:.3g} "
                                 f"(ratio {r.act_ratio:.3g}); {r.act_float32}")
        out["gradient std"] = (f"layer {r.depth}: {r.grad_std[-1]:.3g}, layer 1: {r.grad_std[0]:.3g} "
                               f"(ratio {r.grad_ratio:.3g}); {r.grad_float32}")
    return out


EXPLORER = Explorer("W13 · Signal through depth", CONTROLS, compute, draw, readouts,
                    frame_control="log10_s", figsize=(9.0, 3.4))


def show(**params):
    """Display the explorer: live in a notebook, static when building the book."""
    return _show(EXPLORER, **params)
