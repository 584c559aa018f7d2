"""W4 Softmax builds a categorical: scores become probabilities, and the loss's gradient is
prediction minus truth.

Controls: up to six logits (the first ``classes`` are used), a temperature, a constant added to
every logit, and the true class. Aha: softmax ignores the constant, the temperature sets the
confidence, and the gradient of the cross-entropy with respect to the logits is p - onehot(y).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from d2lcore import likelihood
from d2lcore.explore.toolkit import Explorer, Slider, panels, show as _show, validate

MAX_CLASSES = 6
DEFAULT_LOGITS = (2.0, 1.0, 0.2, -1.0, 0.5, -0.5)

CONTROLS = (
    Slider("classes", "number of classes", 3, MAX_CLASSES, 1, 4, integer=True),
    *(Slider(f"z{i}", f"logit z{i}", -5.0, 5.0, 0.1, DEFAULT_LOGITS[i], used_from=("classes", i + 1))
      for i in range(MAX_CLASSES)),
    Slider("temperature", "temperature T", 0.2, 5.0, 0.1, 1.0),
    Slider("shift", "constant added to every logit", -10.0, 10.0, 0.5, 0.0),
    Slider("true_class", "true class y", 0, MAX_CLASSES - 1, 1, 0, integer=True, at_most=("classes", -1)),
)


@dataclass(frozen=True)
class Result:
    logits: np.ndarray          # the logits actually used, shift included
    probabilities: np.ndarray   # softmax((z + c) / T)
    true_class: int
    nll: float                  # -log p_y, nats
    entropy: float              # H(p), nats
    gradient: np.ndarray        # d nll / d logits of softmax's input: p - onehot(y)
    shift_effect: float         # max |softmax((z + c)/T) - softmax(z/T)|: zero up to rounding
    temperature: float


def compute(**params) -> Result:
    """Probabilities, loss, entropy and gradient for the given controls (see CONTROLS)."""
    p = validate(CONTROLS, params)
    k, y, t = p["classes"], p["true_class"], p["temperature"]
    z = torch.tensor([p[f"z{i}"] for i in range(k)], dtype=torch.float64)
    shifted = (z + p["shift"]) / t
    probs = torch.softmax(shifted, dim=0)
    # The loss is read from the registry, and its gradient comes from autograd, not a formula.
    logits = shifted.clone().requires_grad_(True)
    nll = likelihood.get("cross_entropy").loss(logits[None], torch.tensor([y]))
    (grad,) = torch.autograd.grad(nll, logits)
    return Result(
        logits=(z + p["shift"]).numpy(),
        probabilities=probs.numpy(),
        true_class=y,
        nll=float(nll.detach()),
        entropy=float(likelihood.entropy(probs)),
        gradient=grad.numpy(),
        shift_effect=float((probs - torch.softmax(z / t, dim=0)).abs().max()),
        temperature=t,
    )


def draw(fig, r: Result) -> None:
    ax_p, ax_g = panels(fig, 2)
    classes = np.arange(len(r.probabilities))
    colors = ["tab:orange" if c == r.true_class else "tab:blue" for c in classes]
    ax_p.bar(classes, r.probabilities, color=colors)
    ax_p.set(ylim=(0, 1), xlabel="class", ylabel="probability p",
             title=f"softmax: -log p_y = {r.nll:.3f} nats, H(p) = {r.entropy:.3f} nats")
    ax_p.set_xticks(classes)
    ax_g.bar(classes, r.gradient, color=colors)
    ax_g.axhline(0, color="black", linewidth=0.8)
    ax_g.set(ylim=(-1, 1), xlabel="class", ylabel="d(-log p_y) / d logit  (nats)",
             title="gradient of -log p_y: p - onehot(y)")
    ax_g.set_xticks(classes)


def readouts(r: Result) -> dict[str, str]:
    return {
        "probabilities": ", ".join(f"{v:.3f}" for v in r.probabilities),
        "-log p(true class)": f"{r.nll:.4f} nats",
        "entropy H(p)": f"{r.entropy:.4f} nats",
        "gradient p - onehot(y)": ", ".join(f"{v:+.3f}" for v in r.gradient),
        "effect of the constant": f"{r.shift_effect:.1e}",
    }


EXPLORER = Explorer("W4 · Softmax builds a categorical distribution", CONTROLS, compute, draw, readouts,
                    frame_control="temperature", figsize=(9.0, 3.3))


def show(**params):
    """Display the explorer: live in a notebook, static when building the book."""
    return _show(EXPLORER, **params)
