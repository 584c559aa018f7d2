"""W15 Next-token sampling: a language model is one categorical distribution per step.

A character model maps a context (the characters so far) to logits over its vocabulary; the
next character is drawn from softmax(logits / T), optionally cut to the k most likely
characters and renormalised (top-k). Greedy decoding is the limit T -> 0, or k = 1.

The model is passed in (section 8.2 passes the GRU it trains): any ``CharModel``, whose
``logits`` maps a (B, t) tensor of character indices to (B, V) next-character logits. Without
one, the explorer counts a bigram model from the training part of *Hamlet* (the first 80 % of
``d2lcore.data.text_corpus``, add-0.1 smoothing, as section 8.2 chooses on validation): a few
milliseconds, and a bigram sees only the last character of the context.

Continuations are sampled from a private generator with a fixed seed, so the same controls
always show the same text.

Aha: a language model is a categorical per step; temperature reshapes it, from greedy (one
character, entropy 0) to uniform (log2 V bits).
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

CONTEXTS = ("To be, or not to b", "My lord, I", "O Hamle", "Enter ", "Ham.\n")
SAMPLES, SAMPLE_LENGTH, SEED = 3, 40, 15
TRAIN_FRACTION, ALPHA = 0.8, 0.1
TEMPERATURES = np.geomspace(0.05, 20.0, 41)  # the entropy curve's grid
SHOWN = 16  # bars: the most likely characters at T = 1


@dataclass(frozen=True)
class CharModel:
    """A next-character model: ``logits(ids)`` maps (B, t) int64 indices to (B, V) logits."""

    chars: str
    logits: Callable[[torch.Tensor], torch.Tensor]
    name: str

    def encode(self, text: str) -> torch.Tensor:
        lookup = {c: i for i, c in enumerate(self.chars)}
        missing = sorted(set(text) - set(lookup))
        if missing:
            raise ValueError(f"the context holds characters the model does not know: {missing}")
        return torch.tensor([lookup[c] for c in text], dtype=torch.int64)


def bigram_counts(ids: torch.Tensor, vocabulary: int) -> torch.Tensor:
    """(V, V) float64 counts: row a, column b counts the pairs "a then b" in ``ids``."""
    counts = torch.zeros(vocabulary * vocabulary, dtype=torch.float64)
    counts.index_add_(0, ids[:-1] * vocabulary + ids[1:], torch.ones(len(ids) - 1, dtype=torch.float64))
    return counts.reshape(vocabulary, vocabulary)


@functools.cache
def bigram_model(alpha: float = ALPHA) -> CharModel:
    """The gallery's default: a smoothed bigram counted from the training part of Hamlet."""
    from d2lcore.data import text_corpus

    text = text_corpus.load("hamlet")
    chars = "".join(sorted(set(text)))
    lookup = {c: i for i, c in enumerate(chars)}
    ids = torch.tensor([lookup[c] for c in text[: int(TRAIN_FRACTION * len(text))]])
    counts = bigram_counts(ids, len(chars)) + alpha
    log_probs = (counts / counts.sum(dim=1, keepdim=True)).log()      # (V, V)
    return CharModel(chars, lambda context: log_probs[context[:, -1]], f"bigram (add-{alpha})")


def next_distribution(logits: torch.Tensor, temperature: float, top_k: int) -> torch.Tensor:
    """softmax(logits / T) over the ``top_k`` largest logits, zero elsewhere; rows sum to 1."""
    logits = logits.double()
    k = min(top_k, logits.shape[-1])
    kept = logits.topk(k, dim=-1).indices                              # (..., k); ties: exactly k
    masked = torch.full_like(logits, -math.inf).scatter(-1, kept, logits.gather(-1, kept) / temperature)
    return masked.softmax(dim=-1)


def entropy_bits(probs: torch.Tensor) -> torch.Tensor:
    p = probs.double()
    return -(torch.where(p > 0, p * p.log2(), 0.0)).sum(dim=-1)


def sample(model: CharModel, context: str, temperature: float, top_k: int, count: int = SAMPLES,
           length: int = SAMPLE_LENGTH, seed: int = SEED) -> tuple[str, ...]:
    """``count`` continuations of ``context``, drawn with ``torch.multinomial`` step by step."""
    g = toolkit.generator(seed)
    ids = model.encode(context).expand(count, -1).clone()              # (count, t)
    with torch.no_grad():
        for _ in range(length):
            probs = next_distribution(model.logits(ids), temperature, top_k)  # (count, V)
            ids = torch.cat([ids, torch.multinomial(probs, 1, generator=g)], dim=1)
    return tuple("".join(model.chars[i] for i in row[len(context):].tolist()) for row in ids)


CONTROLS = (
    Choice("context", "context", CONTEXTS, CONTEXTS[0]),
    Slider("temperature", "temperature T", 0.05, 3.0, 0.05, 1.0),
    Slider("top_k", "top-k (65: no cut)", 1, 65, 1, 65, integer=True),
)


@dataclass(frozen=True)
class Result:
    model: str
    context: str
    temperature: float
    top_k: int
    chars: str
    probs: np.ndarray            # (V,) the distribution the next character is drawn from
    base: np.ndarray             # (V,) softmax(logits): T = 1, no cut
    entropy: float               # bits, of probs
    base_entropy: float          # bits, of base
    max_entropy: float           # log2 V
    temperatures: np.ndarray     # the entropy curve at this top-k
    entropies: np.ndarray
    samples: tuple[str, ...]


def _compute(model: CharModel, **params) -> Result:
    p = validate(CONTROLS, params)
    with torch.no_grad():
        logits = model.logits(model.encode(p["context"])[None])[0].double()   # (V,)
    top_k = min(p["top_k"], len(model.chars))
    probs = next_distribution(logits, p["temperature"], top_k)
    base = logits.softmax(dim=-1)
    curve = next_distribution(logits[None] / torch.tensor(TEMPERATURES)[:, None], 1.0, top_k)
    return Result(
        model=model.name, context=p["context"], temperature=p["temperature"], top_k=top_k,
        chars=model.chars, probs=probs.numpy(), base=base.numpy(),
        entropy=float(entropy_bits(probs)), base_entropy=float(entropy_bits(base)),
        max_entropy=math.log2(len(model.chars)), temperatures=TEMPERATURES,
        entropies=entropy_bits(curve).numpy(),
        samples=sample(model, p["context"], p["temperature"], top_k),
    )


def compute(**params) -> Result:
    """The next-character distribution and samples of the default bigram model."""
    return _compute(bigram_model(), **params)


def _label(c: str) -> str:
    return {"\n": "\\n", " ": "␣"}.get(c, c)


def draw(fig, r: Result) -> None:
    ax_p, ax_h = panels(fig, 2, width_ratios=(1.6, 1), left=0.07, wspace=0.25)
    order = np.argsort(-r.base, kind="stable")[:SHOWN]
    x = np.arange(len(order))
    ax_p.bar(x - 0.2, r.base[order], width=0.4, color="0.7", label="T = 1, no cut")
    ax_p.bar(x + 0.2, r.probs[order], width=0.4, color="tab:blue")
    ax_p.set(xticks=x, xticklabels=[_label(r.chars[i]) for i in order], ylim=(0, 1.02),
             ylabel="probability", title=f"next character after {r.context[-12:]!r}")
    ax_p.text(0.98, 0.95, f"grey: T = 1, no cut; blue: T = {r.temperature:.2f}, top-{r.top_k}",
              transform=ax_p.transAxes, ha="right", va="top", fontsize=7, color="0.3")
    ax_h.plot(r.temperatures, r.entropies, color="tab:blue")
    ax_h.axhline(r.max_entropy, color="0.5", linestyle="--", linewidth=0.8)
    ax_h.axhline(math.log2(r.top_k), color="tab:orange", linestyle=":", linewidth=0.8)
    ax_h.plot([r.temperature], [r.entropy], "o", color="black", markerfacecolor="none")
    ax_h.set_xscale("log")
    ax_h.set(xlabel="temperature T", ylabel="entropy (bits)", ylim=(-0.1, r.max_entropy + 0.4),
             title=f"entropy {r.entropy:.2f} bits")


def readouts(r: Result) -> dict[str, str]:
    best = int(np.argmax(r.probs))
    out = {
        "model": r.model,
        "most likely next character": f"{_label(r.chars[best])} (p = {r.probs[best]:.3f})",
        "entropy": f"{r.entropy:.3f} bits (T = 1, no cut: {r.base_entropy:.3f}; "
                   f"uniform: log2 {len(r.chars)} = {r.max_entropy:.3f})",
        "characters with p > 0": f"{int((r.probs > 0).sum())} of {len(r.chars)}",
    }
    for i, text in enumerate(r.samples, 1):
        out[f"sample {i}"] = r.context[-12:] + "|" + text
    return out


def explorer(model: CharModel | None = None) -> Explorer:
    """The explorer for ``model`` (default: the bigram of ``bigram_model()``)."""
    if model is None:
        return EXPLORER
    return Explorer(f"Next-token sampling: {model.name}", CONTROLS, functools.partial(_compute, model),
                    draw, readouts, frame_control="temperature", figsize=(9.0, 3.3), frame_count=13)


EXPLORER = Explorer("W15 · Next-token sampling", CONTROLS, compute, draw, readouts,
                    frame_control="temperature", figsize=(9.0, 3.3), frame_count=13)


def show(model: CharModel | None = None, **params):
    """Display the explorer (for ``model``, or the default bigram): live, or static in the book."""
    return _show(explorer(model), **params)
