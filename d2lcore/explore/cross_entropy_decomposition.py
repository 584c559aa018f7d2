"""W6 Cross-entropy = entropy of the data + KL: what a classifier's loss is made of.

A small data set of labels from four classes has frequencies p; a model gives the classes
probabilities q. The average negative log-likelihood of the data under the model,
-mean log q(y_i), splits exactly into H(p), which belongs to the data alone, plus KL(p || q),
which measures how far the model is from the data. The explorer stacks the two and sets the
average NLL, computed label by label, beside them; a second panel compares p and q class by class.

Aha: only the KL part depends on the model, so minimising cross-entropy is minimising KL; it
reaches zero exactly when q equals the frequencies ("fit"), which is therefore the categorical
maximum-likelihood estimate, and what is left is the data's own entropy.

That floor is for a model that gives every example the same q, as this one does. A classifier
that sees the input is bounded instead by the conditional entropy of the labels given the inputs
(the KL is then to the empirical conditional distribution), which is 0 when every input is
distinct: section 3.3, "Two floors".
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from matplotlib import ticker

from d2lcore import likelihood
from d2lcore.explore.toolkit import Explorer, Slider, Toggle, panels, show as _show, validate

CLASSES = 4
DEFAULT_COUNTS = (6, 3, 2, 1)
DEFAULT_WEIGHTS = (1.0, 1.0, 1.0, 1.0)

CONTROLS = (
    # The first count starts at 1, so the data set is never empty.
    Slider("n0", "count of class 0", 1, 20, 1, DEFAULT_COUNTS[0], integer=True),
    *(Slider(f"n{i}", f"count of class {i}", 0, 20, 1, DEFAULT_COUNTS[i], integer=True) for i in range(1, CLASSES)),
    # Positive weights, normalised inside compute: the model is always a distribution with q > 0.
    *(Slider(f"w{i}", f"model weight of class {i}", 0.1, 5.0, 0.1, DEFAULT_WEIGHTS[i]) for i in range(CLASSES)),
    Toggle("fit", "fit: set the model to the data frequencies", False),
)


@dataclass(frozen=True)
class Result:
    counts: np.ndarray          # class counts of the data set
    labels: np.ndarray          # the data set itself: one class label per example
    frequencies: np.ndarray     # p = counts / N
    model: np.ndarray           # q: normalised weights, or p when fitted
    fit: bool
    entropy: float              # H(p), nats
    kl: float                   # KL(p || q), nats
    cross_entropy: float        # H(p, q), nats
    average_nll: float          # -mean_i log q(y_i), nats, computed over the labels


def compute(**params) -> Result:
    """Entropy, KL and the average NLL of the data set under the model (see CONTROLS)."""
    p = validate(CONTROLS, params)
    counts = torch.tensor([p[f"n{i}"] for i in range(CLASSES)], dtype=torch.int64)
    labels = torch.repeat_interleave(torch.arange(CLASSES), counts)
    freq = counts.double() / counts.sum()
    if p["fit"]:
        model = freq.clone()
    else:
        weights = torch.tensor([p[f"w{i}"] for i in range(CLASSES)], dtype=torch.float64)
        model = weights / weights.sum()
    # The average NLL is computed label by label from the categorical likelihood of the registry,
    # not from the frequencies: that the two routes agree is the point. A fitted model has
    # log q = -inf for unseen classes, which no label ever picks.
    log_q = torch.log(model).expand(len(labels), CLASSES)
    average_nll = likelihood.nll("cross_entropy", log_q, labels)
    return Result(
        counts=counts.numpy(), labels=labels.numpy(), frequencies=freq.numpy(), model=model.numpy(),
        fit=p["fit"],
        entropy=float(likelihood.entropy(freq)),
        kl=float(likelihood.kl_divergence(freq, model)),
        cross_entropy=float(likelihood.cross_entropy(freq, model)),
        average_nll=float(average_nll),
    )


H_COLOR, KL_COLOR, NLL_COLOR = "tab:gray", "tab:red", "tab:purple"
DATA_COLOR, MODEL_COLOR = "tab:blue", "tab:orange"
# A fixed title height: matplotlib's automatic one measures every tick label again each draw.
TITLE_Y = 1.02


def draw(fig, r: Result) -> None:
    ax_s, ax_q = panels(fig, 2, width_ratios=(1.0, 1.3))
    ax_s.bar([0], [r.entropy], color=H_COLOR, width=0.6)
    ax_s.bar([0], [r.kl], bottom=[r.entropy], color=KL_COLOR, width=0.6)
    ax_s.bar([1], [r.average_nll], color=NLL_COLOR, width=0.6)
    # The two parts are named beside the stack: cheaper than a legend, and never covering a bar.
    ax_s.text(0.33, r.entropy / 2, "H(data)", color=H_COLOR, va="center", fontsize=8)
    ax_s.text(0.33, r.entropy + r.kl / 2, "KL", color=KL_COLOR, va="center", fontsize=8)
    ax_s.set(xticks=[0, 1], xticklabels=["H + KL", "-mean log q(yᵢ)"], xlim=(-0.5, 1.5), ylabel="nats",
             ylim=(0, max(2.0, 1.15 * r.average_nll)))
    ax_s.yaxis.set_major_locator(ticker.MaxNLocator(5))  # fewer tick labels, faster updates
    ax_s.set_title(f"H {r.entropy:.3f} + KL {r.kl:.3f} = NLL {r.average_nll:.3f}", y=TITLE_Y)

    classes = np.arange(len(r.counts))
    ax_q.bar(classes - 0.2, r.frequencies, width=0.4, color=DATA_COLOR, label=f"data p (N = {len(r.labels)})")
    ax_q.bar(classes + 0.2, r.model, width=0.4, color=MODEL_COLOR, label="model q" + (", fitted" if r.fit else ""))
    # Headroom above 1 keeps the one-row legend clear of the bars.
    ax_q.set(xticks=classes, xlabel="class", ylabel="probability", ylim=(0, 1.25), yticks=[0, 0.25, 0.5, 0.75, 1])
    ax_q.set_title("data frequencies versus model probabilities", y=TITLE_Y)
    ax_q.legend(loc="upper center", fontsize=8, ncols=2)


def readouts(r: Result) -> dict[str, str]:
    return {
        "entropy H(data)": f"{r.entropy:.4f} nats",
        "KL(data ‖ model)": f"{r.kl:.4f} nats",
        "H + KL": f"{r.entropy + r.kl:.4f} nats",
        "average NLL -mean log q(yᵢ)": f"{r.average_nll:.4f} nats",
        "model q": ", ".join(f"{v:.3f}" for v in r.model),
    }


EXPLORER = Explorer("W6 · Cross-entropy = entropy of the data + KL", CONTROLS, compute, draw, readouts,
                    frame_control="w0", figsize=(9.0, 3.3))


def show(**params):
    """Display the explorer: live in a notebook, static when building the book."""
    return _show(EXPLORER, **params)
