"""Synthetic linear-regression data with a chosen noise distribution.

y = X w + b + noise, with X ~ N(0, I). The noise family matters in this book: each one is the
probability model behind a loss (Gaussian: squared error, Laplace: absolute error, Student-t:
a heavy-tailed robust loss), so the noise is drawn from the very ``torch.distributions``
object whose ``log_prob`` the book later turns into that loss.
"""
from __future__ import annotations

import math
import operator

import torch
from torch.distributions import Distribution, Laplace, Normal, StudentT

from d2lcore.data.batches import Batches
from d2lcore.rng import cpu_seeded, stream_seed

NOISE_FAMILIES = ("gaussian", "laplace", "student_t")


def noise_distribution(family: str, scale: float, df: float = 3.0) -> Distribution:
    """The zero-centred noise distribution of ``family`` with scale parameter ``scale``."""
    if family not in NOISE_FAMILIES:
        raise ValueError(f"unknown noise_family {family!r}; choose one of {', '.join(NOISE_FAMILIES)}")
    if not (math.isfinite(scale) and scale > 0):
        raise ValueError(f"noise (the scale of the {family} noise) must be a finite number > 0, got {scale}")
    if not (math.isfinite(df) and df > 0):
        raise ValueError(f"df (degrees of freedom of the Student-t noise) must be a finite number > 0, got {df}")
    zero, s = torch.tensor(0.0), torch.tensor(float(scale))
    if family == "gaussian":
        return Normal(zero, s)
    if family == "laplace":
        return Laplace(zero, s)
    return StudentT(torch.tensor(float(df)), zero, s)


class SyntheticRegression:
    """Training and validation sets drawn from y = X w + b + noise.

    ``noise`` is the scale parameter of ``noise_family``: the standard deviation σ for
    "gaussian", b for "laplace" (standard deviation b√2), the scale for "student_t" with ``df``
    degrees of freedom (standard deviation scale·√(df/(df-2)) when df > 2). ``noise_distribution``
    is that distribution as a ``torch.distributions`` object.

    The draws depend only on ``seed``: they happen under a forked copy of the CPU random state
    (``torch.distributions`` samples from the global generator), so the result is the same
    whatever ran before, and the caller's random state is left as it was. The generator is seeded
    with ``stream_seed(seed, "synthetic-regression")``, not with ``seed`` itself, so a model
    initialised after ``torch.manual_seed(seed)`` with the same number draws numbers unrelated to
    the data (with the plain seed its first weights could repeat the draws of ``X_train``).
    """

    def __init__(self, w, b: float, noise: float = 0.01, n_train: int = 1000, n_val: int = 1000,
                 noise_family: str = "gaussian", df: float = 3.0, seed: int = 0):
        w = torch.as_tensor(w, dtype=torch.float32).detach().clone()
        if w.ndim != 1 or len(w) == 0:
            raise ValueError(f"w must be a non-empty 1-D vector of weights, got shape {tuple(w.shape)}; "
                             f"for one feature write w=[2.0]")
        n_train, n_val = _count("n_train", n_train, minimum=1), _count("n_val", n_val, minimum=0)
        self.noise_distribution = noise_distribution(noise_family, float(noise), float(df))
        self.w, self.b = w, float(b)
        self.noise, self.noise_family, self.df = float(noise), noise_family, float(df)
        self.seed = seed
        n = n_train + n_val
        with cpu_seeded(stream_seed(seed, "synthetic-regression")):
            X = torch.randn(n, len(w), dtype=torch.float32)
            eps = self.noise_distribution.sample((n, 1)).to(torch.float32)
        y = X @ w.reshape(-1, 1) + self.b + eps
        self.X_train, self.X_val = X[:n_train], X[n_train:]
        self.y_train, self.y_val = y[:n_train], y[n_train:]

    def loader(self, split: str, batch_size: int, shuffle: bool | None = None,
               device: torch.device | str | None = None, seed: int = 0) -> Batches:
        """Minibatches ``(X, y)`` of ``split`` ("train" or "val"); shuffled by default for "train" only.

        Make the loader once and iterate it every epoch: each pass draws a new permutation. A new
        loader with the same ``seed`` starts the same sequence of permutations again."""
        if split not in ("train", "val"):
            raise ValueError(f"unknown split {split!r}; SyntheticRegression has ('train', 'val')")
        X, y = (self.X_train, self.y_train) if split == "train" else (self.X_val, self.y_val)
        return Batches(X, y, batch_size=batch_size, shuffle=(split == "train") if shuffle is None else shuffle,
                       seed=seed, device=device)

    def __repr__(self) -> str:
        w = ", ".join(f"{v:g}" for v in self.w.tolist())
        df = f", df={self.df:g}" if self.noise_family == "student_t" else ""
        return (f"SyntheticRegression(w=[{w}], b={self.b:g}, {self.noise_family} noise with scale "
                f"{self.noise:g}{df}; {len(self.y_train)} train / {len(self.y_val)} val examples, seed={self.seed})")


def _count(name: str, value, minimum: int) -> int:
    try:
        value = operator.index(value)  # ints, numpy ints; not floats or bools-as-floats
    except TypeError:
        raise TypeError(f"{name} must be an integer, got {value!r}") from None
    if value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value}")
    return value
