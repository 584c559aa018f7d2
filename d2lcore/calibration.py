"""Calibration of a classifier's probabilities: NLL, Brier score, ECE and reliability bins.

Every function takes predicted probabilities ``probs`` of shape (N, K), rows summing to one
(a softmax output, or an average of softmax outputs such as an ensemble's or Monte-Carlo
dropout's), and integer labels ``y`` of shape (N,). Everything stays on the tensors' device
and returns 0-d tensors (or tensors per bin): nothing syncs with the host, so the functions can
be used inside an evaluation loop and read once at the end.

- ``nll``: mean negative log-likelihood of the labels, in nats;
- ``brier``: mean squared distance between the probability vector and the one-hot label,
  summed over the K classes (Brier 1950), between 0 and 2;
- ``reliability``: per equal-width confidence bin, the number of predictions, their mean
  confidence (the top probability) and their accuracy;
- ``ece``: expected calibration error, the count-weighted mean of |accuracy - confidence|
  over the bins (Naeini et al. 2015; Guo et al. 2017).

>>> probs = torch.tensor([[0.9, 0.1], [0.6, 0.4], [0.2, 0.8]])
>>> y = torch.tensor([0, 1, 1])
>>> round(float(brier(probs, y)), 4)
0.2733
>>> round(float(ece(probs, y, bins=10)), 4)
0.3
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

EPS = 1e-12  # probabilities are clamped at this before the logarithm: an exact 0 gives 27.6 nats


def _check(probs: torch.Tensor, y: torch.Tensor) -> None:
    if probs.ndim != 2:
        raise ValueError(f"probs must have shape (N, K), got {tuple(probs.shape)}")
    if y.shape != probs.shape[:1]:
        raise ValueError(f"y must have shape ({probs.shape[0]},) to match probs, got {tuple(y.shape)}")
    if y.dtype not in (torch.int64, torch.int32, torch.int16, torch.uint8):
        raise TypeError(f"y must hold integer class labels, got {y.dtype}")
    if not probs.is_floating_point():
        raise TypeError(f"probs must be floating point probabilities, got {probs.dtype}; "
                        f"pass logits.softmax(dim=1)")


def nll(probs: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Mean -log probs[i, y_i] in nats (a 0-d tensor)."""
    _check(probs, y)
    picked = probs.gather(1, y.long()[:, None]).squeeze(1)           # (N,)
    return -picked.clamp_min(EPS).log().mean()


def brier(probs: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Mean over examples of sum_k (probs[i, k] - [y_i = k])^2 (a 0-d tensor in [0, 2])."""
    _check(probs, y)
    onehot = torch.nn.functional.one_hot(y.long(), probs.shape[1]).to(probs.dtype)  # (N, K)
    return (probs - onehot).pow(2).sum(dim=1).mean()


@dataclass(frozen=True)
class Reliability:
    """Equal-width bins of the top probability: ``edges`` (bins + 1,), and per bin the
    ``count`` of predictions, their mean ``confidence`` and their ``accuracy`` (both 0 where a
    bin is empty). All tensors on the inputs' device."""

    edges: torch.Tensor
    count: torch.Tensor
    confidence: torch.Tensor
    accuracy: torch.Tensor

    @property
    def ece(self) -> torch.Tensor:
        """sum_b (n_b / N) |accuracy_b - confidence_b|."""
        weight = self.count / self.count.sum()
        return (weight * (self.accuracy - self.confidence).abs()).sum()


def reliability(probs: torch.Tensor, y: torch.Tensor, bins: int = 15) -> Reliability:
    """The reliability-diagram bins of ``probs``: bin b holds the predictions whose top
    probability lies in (b / bins, (b + 1) / bins] (the first bin also takes 0)."""
    _check(probs, y)
    if not isinstance(bins, int) or bins < 1:
        raise ValueError(f"bins must be a positive integer, got {bins!r}")
    confidence, predicted = probs.max(dim=1)                            # (N,), (N,)
    correct = (predicted == y).to(probs.dtype)
    index = (confidence * bins).ceil().long().clamp(1, bins) - 1         # (N,) in 0..bins-1
    count = torch.zeros(bins, dtype=probs.dtype, device=probs.device).index_add_(
        0, index, torch.ones_like(confidence))
    conf_sum = torch.zeros_like(count).index_add_(0, index, confidence)
    correct_sum = torch.zeros_like(count).index_add_(0, index, correct)
    safe = count.clamp_min(1)
    edges = torch.linspace(0, 1, bins + 1, dtype=probs.dtype, device=probs.device)
    return Reliability(edges, count, conf_sum / safe, correct_sum / safe)


def ece(probs: torch.Tensor, y: torch.Tensor, bins: int = 15) -> torch.Tensor:
    """Expected calibration error with ``bins`` equal-width bins (a 0-d tensor in [0, 1])."""
    return reliability(probs, y, bins).ece


def summary(probs: torch.Tensor, y: torch.Tensor, bins: int = 15) -> dict[str, float]:
    """Accuracy, NLL, Brier score and ECE as plain floats (one host read for all four)."""
    accuracy = (probs.argmax(dim=1) == y).to(probs.dtype).mean()
    values = torch.stack([accuracy, nll(probs, y), brier(probs, y), ece(probs, y, bins)]).tolist()
    return dict(zip(("accuracy", "nll", "brier", "ece"), values))
