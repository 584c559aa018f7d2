"""W18 Calibration and temperature: one number T rescales every logit; the ranking stays, the
probabilities change.

A classifier is given by its logits on held-out images and their labels (``Scores``);
chapter 3's calibration section passes the validation logits of the network it trains. Dividing the
logits by a temperature T > 0 before the softmax keeps every arg max, so the accuracy does not
depend on T, while the confidence falls as T grows (T -> 0: one-hot; T -> infinity: uniform).
For each T the explorer measures, with ``d2lcore.calibration``, the negative log-likelihood,
the Brier score and the expected calibration error (equal-width confidence bins), and draws the
reliability diagram with the histogram of confidences beside the NLL and ECE as functions of T.

Without scores it builds a synthetic classifier in closed form (a few milliseconds): true logits
u ~ 3 N(0, I) for N_DEFAULT images and ten classes, labels drawn from softmax(u) by a private
generator, and a model that reports 2u, twice the true logits. Its probabilities are too sharp
by construction, and the temperature that undoes it is T = 2.

The NLL of softmax(z / T) is a convex function of beta = 1 / T (a log-sum-exp of beta z minus
the linear beta z_y, averaged), so ``best_temperature`` finds its minimiser by Newton's method
in beta: the temperature that validation NLL picks (Guo et al. 2017).

Aha: T leaves accuracy unchanged and changes the probabilities; validation NLL picks T.
"""
from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np
import torch
from matplotlib.ticker import NullFormatter

from d2lcore import calibration
from d2lcore.explore import toolkit
from d2lcore.explore.toolkit import Explorer, Slider, panels, show as _show, validate

N_DEFAULT, CLASSES_DEFAULT, SCALE_DEFAULT, SHARPEN_DEFAULT, SEED = 4000, 10, 3.0, 2.0, 18
TEMPERATURES = np.geomspace(0.25, 4.0, 49)  # the grid of the NLL and ECE curves
BETA_RANGE = (1 / 16, 16.0)                   # where best_temperature searches 1 / T

CONTROLS = (
    Slider("temperature", "temperature T", 0.25, 4.0, 0.05, 1.0),
    Slider("bins", "confidence bins", 5, 25, 1, 15, integer=True),
)


@dataclass(frozen=True, eq=False)
class Scores:
    """A classifier's ``logits`` (N, K) on held-out images and the true ``labels`` (N,).

    Kept as float64 on the CPU; compared and cached by identity (``eq=False``)."""

    logits: torch.Tensor
    labels: torch.Tensor
    name: str

    def __post_init__(self):
        if self.logits.ndim != 2 or self.logits.shape[1] < 2:
            raise ValueError(f"logits must have shape (N, K) with K >= 2, got {tuple(self.logits.shape)}")
        if self.labels.shape != self.logits.shape[:1]:
            raise ValueError(f"labels must have shape ({self.logits.shape[0]},), got {tuple(self.labels.shape)}")
        if self.labels.is_floating_point() or self.labels.dtype == torch.bool:
            raise TypeError(f"labels must be integer class indices, got {self.labels.dtype}")
        if not torch.isfinite(self.logits).all():
            raise ValueError("logits must be finite")
        object.__setattr__(self, "logits", self.logits.detach().to("cpu", torch.float64))
        object.__setattr__(self, "labels", self.labels.detach().to("cpu", torch.int64))


@functools.cache
def default_scores() -> Scores:
    """The gallery's classifier: logits twice the truth's, so T = 2 undoes the over-confidence."""
    g = toolkit.generator(SEED)
    truth = SCALE_DEFAULT * torch.randn(N_DEFAULT, CLASSES_DEFAULT, generator=g, dtype=torch.float64)
    labels = torch.multinomial(truth.softmax(dim=1), 1, generator=g).squeeze(1)   # (N,)
    return Scores(SHARPEN_DEFAULT * truth, labels, "synthetic: logits twice the true ones")


def tempered(logits: torch.Tensor, temperature: float) -> torch.Tensor:
    """softmax(logits / T) along the last axis."""
    return (logits / temperature).softmax(dim=-1)


def nll_at(scores: Scores, temperature: float) -> float:
    """Mean -log softmax(z / T)_y in nats (exact, from the log-softmax)."""
    log_p = (scores.logits / temperature).log_softmax(dim=1)                     # (N, K)
    return float(-log_p.gather(1, scores.labels[:, None]).mean())


@functools.lru_cache(maxsize=8)
def best_temperature(scores: Scores) -> float:
    """The T that minimises the NLL, by Newton's method on the convex NLL(beta), beta = 1/T.

    With p = softmax(beta z): d NLL / d beta = mean(E_p[z] - z_y) and
    d^2 NLL / d beta^2 = mean(Var_p[z]) >= 0. Each step is clamped to a factor of 4 in beta
    and to BETA_RANGE, so it cannot run away while far from the minimum."""
    z, y = scores.logits, scores.labels
    z_y = z.gather(1, y[:, None]).squeeze(1)                                     # (N,)
    beta = 1.0
    for _ in range(100):
        p = (beta * z).softmax(dim=1)                                            # (N, K)
        mean_z = (p * z).sum(dim=1)                                              # (N,)
        slope = float((mean_z - z_y).mean())
        curvature = float(((p * z * z).sum(dim=1) - mean_z**2).mean())
        if curvature <= 0:  # every logit row constant: the NLL does not depend on T
            break
        step = slope / curvature
        new = min(max(beta - step, beta / 4, BETA_RANGE[0]), beta * 4, BETA_RANGE[1])
        if abs(new - beta) <= 1e-12 * beta:
            beta = new
            break
        beta = new
    return 1 / beta


@functools.lru_cache(maxsize=32)
def curves(scores: Scores, bins: int) -> tuple[np.ndarray, np.ndarray]:
    """NLL and ECE over TEMPERATURES (read-only arrays), all temperatures in one pass.

    The ECE is calibration.ece's binning done for every temperature at once: with n_b
    predictions in bin b, n_b |acc_b - conf_b| / N = |sum of correct - sum of confidences| / N."""
    z, y = scores.logits, scores.labels
    temps = torch.tensor(TEMPERATURES, dtype=torch.float64)
    log_p = (z[None] / temps[:, None, None]).log_softmax(dim=2)                  # (G, N, K)
    nll = -log_p.gather(2, y[None, :, None].expand(len(temps), -1, 1)).mean(dim=(1, 2))
    confidence = log_p.max(dim=2).values.exp()                                   # (G, N)
    correct = (z.argmax(dim=1) == y).double().expand_as(confidence)             # (G, N)
    index = (confidence * bins).ceil().long().clamp(1, bins) - 1                 # (G, N)
    flat = (index + bins * torch.arange(len(temps))[:, None]).flatten()
    size = len(temps) * bins
    conf_sum = torch.zeros(size, dtype=torch.float64).index_add_(0, flat, confidence.flatten())
    correct_sum = torch.zeros(size, dtype=torch.float64).index_add_(0, flat, correct.flatten())
    ece = (correct_sum - conf_sum).abs().reshape(len(temps), bins).sum(dim=1) / len(y)
    out = (nll.numpy(), ece.numpy())
    for a in out:
        a.setflags(write=False)
    return out


@dataclass(frozen=True)
class Result:
    name: str
    temperature: float
    bins: int
    accuracy: float         # of the arg max: the same for every T
    nll: float              # nats
    brier: float            # in [0, 2]
    ece: float              # in [0, 1]
    mean_confidence: float  # mean top probability
    entropy: float          # mean entropy of softmax(z / T), nats
    edges: np.ndarray       # (bins + 1,) confidence bin edges
    count: np.ndarray       # (bins,) predictions per bin
    bin_confidence: np.ndarray  # (bins,) their mean confidence (0 where empty)
    bin_accuracy: np.ndarray    # (bins,) their accuracy (0 where empty)
    temperatures: np.ndarray    # the curves' grid
    nll_curve: np.ndarray
    ece_curve: np.ndarray
    best_temperature: float     # minimiser of the NLL
    best_nll: float


def _compute(scores: Scores, **params) -> Result:
    p = validate(CONTROLS, params)
    t, bins = p["temperature"], p["bins"]
    probs = tempered(scores.logits, t)                                           # (N, K)
    rel = calibration.reliability(probs, scores.labels, bins)
    accuracy = (scores.logits.argmax(dim=1) == scores.labels).double().mean()   # T-free
    entropy = -(probs * probs.clamp_min(1e-300).log()).sum(dim=1).mean()
    nll_curve, ece_curve = curves(scores, bins)
    best = best_temperature(scores)
    return Result(
        name=scores.name, temperature=t, bins=bins, accuracy=float(accuracy),
        nll=nll_at(scores, t), brier=float(calibration.brier(probs, scores.labels)),
        ece=float(rel.ece), mean_confidence=float(probs.max(dim=1).values.mean()),
        entropy=float(entropy), edges=rel.edges.numpy(), count=rel.count.numpy(),
        bin_confidence=rel.confidence.numpy(), bin_accuracy=rel.accuracy.numpy(),
        temperatures=TEMPERATURES, nll_curve=nll_curve, ece_curve=ece_curve,
        best_temperature=best, best_nll=nll_at(scores, best),
    )


def compute(**params) -> Result:
    """Calibration of the default synthetic classifier at the given controls (see CONTROLS)."""
    return _compute(default_scores(), **params)


def draw(fig, r: Result) -> None:
    ax_r, ax_c = panels(fig, 2, left=0.08, right=0.93, wspace=0.38)
    width = r.edges[1] - r.edges[0]
    centres = r.edges[:-1] + width / 2
    filled = r.count > 0
    ax_r.bar(centres[filled], r.bin_accuracy[filled], width=0.9 * width, color="tab:blue",
             label="accuracy")
    ax_r.bar(centres[filled], (r.bin_confidence - r.bin_accuracy)[filled], bottom=r.bin_accuracy[filled],
             width=0.9 * width, color="tab:red", alpha=0.35, label="gap to confidence")
    ax_r.plot([0, 1], [0, 1], "--", color="black", linewidth=0.9)
    ax_r.set(xlim=(0, 1), ylim=(0, 1), xlabel="confidence (top probability)", ylabel="accuracy; share",
             title=f"T = {r.temperature:.2f}: ECE {r.ece:.3f}, accuracy {r.accuracy:.3f}")
    share = r.count / r.count.sum()  # the histogram of confidences, on the same 0-1 scale
    ax_r.step(r.edges, np.append(share, share[-1]), where="post", color="0.3", linewidth=1.2,
              label="share of predictions")
    ax_r.legend(loc="upper left", fontsize=8)

    ax_c.plot(r.temperatures, r.nll_curve, color="tab:blue", label="NLL (nats)")
    ax_c.plot(r.temperatures, r.ece_curve, color="tab:red", label="ECE")
    ax_c.axvline(r.best_temperature, color="tab:blue", linestyle=":", linewidth=1.0)
    ax_c.axvline(r.temperature, color="black", linewidth=0.9)
    ax_c.plot([r.temperature], [r.nll], "o", color="tab:blue", markerfacecolor="none")
    ax_c.plot([r.temperature], [r.ece], "o", color="tab:red", markerfacecolor="none")
    ax_c.set_xscale("log")
    ax_c.set_xticks([0.25, 0.5, 1, 2, 4], ["0.25", "0.5", "1", "2", "4"])
    ax_c.xaxis.set_minor_formatter(NullFormatter())
    ax_c.set(xlabel="temperature T (log scale)", ylim=(0, max(1.0, 2.5 * r.best_nll)),
             title=f"NLL {r.nll:.3f}; smallest at T = {r.best_temperature:.2f}")
    ax_c.legend(loc="upper right", fontsize=8)


def readouts(r: Result) -> dict[str, str]:
    return {
        "classifier": r.name,
        "accuracy (any T)": f"{r.accuracy:.4f}",
        "mean confidence": f"{r.mean_confidence:.4f}",
        "NLL": f"{r.nll:.4f} nats (smallest {r.best_nll:.4f}, at T = {r.best_temperature:.3f})",
        "Brier score": f"{r.brier:.4f}",
        "ECE": f"{r.ece:.4f} ({r.bins} bins)",
        "mean entropy": f"{r.entropy:.4f} nats",
    }


def explorer(scores: Scores | None = None) -> Explorer:
    """The explorer for ``scores`` (default: the synthetic over-confident classifier)."""
    if scores is None:
        return EXPLORER
    return Explorer(f"Calibration and temperature: {scores.name}", CONTROLS,
                    functools.partial(_compute, scores), draw, readouts,
                    frame_control="temperature", figsize=(9.0, 3.4), frame_count=16)


EXPLORER = Explorer("W18 · Calibration and temperature", CONTROLS, compute, draw, readouts,
                    frame_control="temperature", figsize=(9.0, 3.4), frame_count=16)


def show(scores: Scores | None = None, **params):
    """Display the explorer (for ``scores``, or the synthetic default): live, or static in the book."""
    return _show(explorer(scores), **params)
