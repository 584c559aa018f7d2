"""The book's thesis as data: every loss is a negative log-likelihood, up to a scale and a constant.

For each registered pair, with the loss averaged over examples as torch does,

    mean negative log-likelihood = multiplier(params) * loss + constant(params)

so "minimising the loss" and "maximising the likelihood" pick the same parameters. Chapters,
explorers and tests read the multipliers and constants from here; nobody restates them.

    mse            Gaussian(mu, sigma)     1 / (2 sigma^2)   log sigma + log(2 pi) / 2
    l1             Laplace(mu, b)          1 / b             log 2b
    huber          Huber(mu, delta)        1                 log Z(delta)
    student_t      StudentT(df, mu, s)     1                 0   (the loss is its own NLL)
    cross_entropy  Categorical(logits)     1                 0
    bce            Bernoulli(logits)       1                 0

All quantities are in nats (natural logarithms); divide by ``math.log(2)`` for bits.
"""
from __future__ import annotations

import functools
import math
from collections.abc import Callable
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch.distributions import Bernoulli, Categorical, Distribution, Laplace, Normal, StudentT, constraints
from torch.distributions.utils import broadcast_all

LOG_2PI = math.log(2 * math.pi)
NATS_PER_BIT = math.log(2)


def _positive(name: str, value) -> None:
    bad = (torch.as_tensor(value) <= 0) | ~torch.isfinite(torch.as_tensor(value, dtype=torch.float64))
    if bad.any():
        raise ValueError(f"{name} must be a finite number > 0, got {value!r}")


# ---------------------------------------------------------------------------------------------
# The Huber distribution: a Gaussian core with exponential (Laplace-like) tails.

def huber_rho(r: torch.Tensor, delta) -> torch.Tensor:
    """Huber's function: r^2/2 for |r| <= delta, delta (|r| - delta/2) beyond (Huber, 1964)."""
    a = r.abs()
    return torch.where(a <= delta, 0.5 * r**2, delta * (a - 0.5 * delta))


def _huber_masses(delta: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Unnormalised mass of the core [-delta, delta] and of both tails together."""
    core = math.sqrt(2 * math.pi) * torch.erf(delta / math.sqrt(2))
    tails = 2 * torch.exp(-0.5 * delta**2) / delta
    return core, tails


def huber_log_normalizer(delta) -> torch.Tensor:
    """log Z(delta), Z = sqrt(2 pi) erf(delta / sqrt 2) + (2 / delta) exp(-delta^2 / 2)."""
    delta = torch.as_tensor(delta, dtype=torch.get_default_dtype() if not torch.is_tensor(delta) else delta.dtype)
    _positive("delta", delta)
    core, tails = _huber_masses(delta)
    return torch.log(core + tails)


class Huber(Distribution):
    """Density proportional to exp(-huber_rho((x - loc) / scale, delta)).

    With ``scale=1`` its negative log-density is ``F.huber_loss(x, loc, delta=delta)`` plus
    ``log Z(delta)``. Large delta tends to a Gaussian; small delta to a Laplace shape.
    """

    arg_constraints = {"loc": constraints.real, "delta": constraints.positive, "scale": constraints.positive}
    support = constraints.real
    has_rsample = False

    def __init__(self, loc, delta, scale=1.0, validate_args=None):
        _positive("delta", delta)
        _positive("scale", scale)
        self.loc, self.delta, self.scale = broadcast_all(loc, delta, scale)
        super().__init__(self.loc.shape, validate_args=validate_args)

    def expand(self, batch_shape, _instance=None):
        shape = torch.Size(batch_shape)
        return Huber(self.loc.expand(shape), self.delta.expand(shape), self.scale.expand(shape))

    def log_prob(self, value):
        r = (value - self.loc) / self.scale
        return -huber_rho(r, self.delta) - huber_log_normalizer(self.delta) - torch.log(self.scale)

    def cdf(self, value):
        r, d = (value - self.loc) / self.scale, self.delta
        core, tails = _huber_masses(d)
        z = core + tails
        # Mass beyond |r| in one tail, exp(-d |r| + d^2/2) / d; clamped so it never overflows.
        beyond = torch.exp(-d * torch.maximum(r.abs(), d) + 0.5 * d**2) / d / z
        inside = (tails / 2 + math.sqrt(2 * math.pi) * (torch.special.ndtr(r) - torch.special.ndtr(-d))) / z
        return torch.where(r < -d, beyond, torch.where(r > d, 1 - beyond, inside))

    def sample(self, sample_shape=torch.Size()):
        """Exact sampling: pick the core or a tail by its mass, then sample a truncated normal
        (inverse CDF) or an exponential shifted to start at delta."""
        shape = self._extended_shape(sample_shape)
        with torch.no_grad():
            d = self.delta.expand(shape)
            core, tails = _huber_masses(d)
            in_core = torch.rand(shape, dtype=d.dtype, device=d.device) < core / (core + tails)
            lo = torch.special.ndtr(-d)
            u = torch.rand(shape, dtype=d.dtype, device=d.device)
            core_draw = torch.special.ndtri(lo + u * (1 - 2 * lo)).clamp(-d, d)
            exp_draw = -torch.log1p(-torch.rand(shape, dtype=d.dtype, device=d.device)) / d
            sign = torch.where(torch.rand(shape, dtype=d.dtype, device=d.device) < 0.5, -1.0, 1.0)
            r = torch.where(in_core, core_draw, sign * (d + exp_draw))
            return self.loc.expand(shape) + self.scale.expand(shape) * r

    @property
    def mean(self):
        return self.loc

    @property
    def mode(self):
        return self.loc

    @property
    def variance(self):
        d = self.delta
        core, tails = _huber_masses(d)
        core_r2 = core - 2 * d * torch.exp(-0.5 * d**2)                     # integral of r^2 over the core
        tail_r2 = 2 * torch.exp(-0.5 * d**2) * (d + 2 / d + 2 / d**3)       # ... and over both tails
        return self.scale**2 * (core_r2 + tail_r2) / (core + tails)

    def entropy(self):
        d = self.delta
        core, tails = _huber_masses(d)
        core_rho = 0.5 * (core - 2 * d * torch.exp(-0.5 * d**2))
        tail_rho = 2 * torch.exp(-0.5 * d**2) * (1 / d + d / 2)
        return (core_rho + tail_rho) / (core + tails) + torch.log(core + tails) + torch.log(self.scale)


# ---------------------------------------------------------------------------------------------
# Input checks: cheap (shapes, dtypes, one min/max), used outside the training hot loop.

def _check_regression(prediction: torch.Tensor, target: torch.Tensor) -> None:
    if prediction.shape != target.shape:
        raise ValueError(
            f"prediction shape {tuple(prediction.shape)} and target shape {tuple(target.shape)} differ; "
            f"broadcasting would silently compare every prediction with every target "
            f"(reshape one, e.g. target.reshape(prediction.shape))")


def _check_class_labels(logits: torch.Tensor, labels: torch.Tensor) -> None:
    if logits.ndim != 2:
        raise ValueError(f"logits must have shape (N, C), one row of class scores per example; got shape "
                         f"{tuple(logits.shape)}")
    n, c = logits.shape
    if labels.is_floating_point():
        raise TypeError(
            f"class labels must be int64 class indices of shape ({n},), got {labels.dtype} of shape "
            f"{tuple(labels.shape)}; convert with labels.long(), or for soft labels (probabilities of "
            f"shape ({n}, {c})) use soft_cross_entropy")
    if labels.shape != (n,):
        raise ValueError(f"class labels must have shape ({n},) to match {n} rows of logits, got "
                         f"{tuple(labels.shape)}")
    if n and (labels.min() < 0 or labels.max() >= c):
        raise ValueError(f"class labels must lie in [0, {c}) for {c} classes; got values from "
                         f"{int(labels.min())} to {int(labels.max())}")


def _check_hard_binary(logits: torch.Tensor, target: torch.Tensor) -> None:
    """The Bernoulli likelihood needs observed outcomes: every target exactly 0 or 1."""
    _check_binary(logits, target)
    if target.numel() and not ((target == 0) | (target == 1)).all():
        raise ValueError(
            "the Bernoulli log-likelihood needs targets that are exactly 0 or 1; soft targets in "
            "between give a Bernoulli cross-entropy H(t, sigmoid(logits)) = H(t) + KL, which is what "
            "get('bce').loss computes, not the log-likelihood of an observation")


def _check_binary(logits: torch.Tensor, target: torch.Tensor) -> None:
    _check_regression(logits, target)
    if not target.is_floating_point():
        raise TypeError(f"binary targets must be floats in [0, 1], got {target.dtype}; use target.float()")
    if target.numel() and (target.min() < 0 or target.max() > 1):
        raise ValueError(f"binary targets must lie in [0, 1]; got values from {float(target.min())} "
                         f"to {float(target.max())}")


# ---------------------------------------------------------------------------------------------
# The registry.

@dataclass(frozen=True)
class LossLikelihood:
    """One loss and the distribution whose negative log-likelihood it is.

    ``torch_loss(prediction, target, **params)`` is the plain torch loss (mean over examples);
    ``loss`` is the same with input checks. ``distribution(prediction, **params)`` builds the
    torch distribution of the target given the prediction. For every pair,
    ``nll == multiplier(**params) * loss + constant(**params)``.
    """

    name: str
    family: str
    params: dict[str, float]
    torch_loss: Callable[..., torch.Tensor]
    make_distribution: Callable[..., Distribution]
    multiplier_fn: Callable[..., float]
    constant_fn: Callable[..., float]
    check: Callable[[torch.Tensor, torch.Tensor], None]
    description: str = field(default="", compare=False)
    nll_check: Callable[[torch.Tensor, torch.Tensor], None] | None = None  # when the NLL needs more than the loss

    def _params(self, params: dict) -> dict:
        unknown = set(params) - set(self.params)
        if unknown:
            raise TypeError(f"{self.name} takes parameters {sorted(self.params) or 'none'}, not {sorted(unknown)}")
        merged = {**self.params, **params}
        for key, value in merged.items():
            _positive(key, value)
        return merged

    def loss(self, prediction, target, **params) -> torch.Tensor:
        self.check(prediction, target)
        return self.torch_loss(prediction, target, **self._params(params))

    def validate(self, prediction, target, **params) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
        """Check one batch, then return the plain torch loss to train with.

        The checked ``loss`` reads label ranges back from the device on every call; inside a
        training loop that is a host sync per batch. Check the first batch once instead::

            X, y = next(iter(train))
            loss = likelihood.get("cross_entropy").validate(model(X), y)
            d2lcore.fit(model, loss, optimizer, train, val, epochs=10)
        """
        self.check(prediction, target)
        merged = self._params(params)
        plain = self.torch_loss
        if not merged:
            return plain
        return functools.partial(plain, **merged)

    def distribution(self, prediction, **params) -> Distribution:
        return self.make_distribution(prediction, **self._params(params))

    def multiplier(self, **params) -> float:
        return float(self.multiplier_fn(**self._params(params)))

    def constant(self, **params) -> float:
        return float(self.constant_fn(**self._params(params)))

    def nll(self, prediction, target, **params) -> torch.Tensor:
        """Mean negative log-likelihood of ``target``, computed from the distribution itself."""
        (self.nll_check or self.check)(prediction, target)
        return -self.distribution(prediction, **params).log_prob(target).mean()

    def nll_from_loss(self, loss, **params):
        return self.multiplier(**params) * loss + self.constant(**params)


def _student_t_loss(prediction, target, df, scale):
    return -StudentT(df, prediction, scale).log_prob(target).mean()


REGISTRY: dict[str, LossLikelihood] = {
    pair.name: pair
    for pair in [
        LossLikelihood(
            "mse", "Gaussian", {"sigma": 1.0},
            lambda p, t, sigma: F.mse_loss(p, t),
            lambda p, sigma: Normal(p, sigma),
            lambda sigma: 1 / (2 * sigma**2),
            lambda sigma: math.log(sigma) + 0.5 * LOG_2PI,
            _check_regression, "squared error: Gaussian noise with standard deviation sigma"),
        LossLikelihood(
            "l1", "Laplace", {"b": 1.0},
            lambda p, t, b: F.l1_loss(p, t),
            lambda p, b: Laplace(p, b),
            lambda b: 1 / b,
            lambda b: math.log(2 * b),
            _check_regression, "absolute error: Laplace noise with scale b"),
        LossLikelihood(
            "huber", "Huber", {"delta": 1.0},
            lambda p, t, delta: F.huber_loss(p, t, delta=float(delta)),
            lambda p, delta: Huber(p, delta),
            lambda delta: 1.0,
            lambda delta: float(huber_log_normalizer(torch.tensor(float(delta), dtype=torch.float64))),
            _check_regression, "Huber loss: Gaussian core, exponential tails beyond delta"),
        LossLikelihood(
            "student_t", "Student-t", {"df": 3.0, "scale": 1.0},
            _student_t_loss,
            lambda p, df, scale: StudentT(df, p, scale),
            lambda df, scale: 1.0,
            lambda df, scale: 0.0,
            _check_regression, "Student-t NLL: heavy tails with df degrees of freedom"),
        LossLikelihood(
            "cross_entropy", "Categorical", {},
            lambda logits, y: F.cross_entropy(logits, y),
            lambda logits: Categorical(logits=logits),
            lambda: 1.0,
            lambda: 0.0,
            _check_class_labels, "cross-entropy on logits: categorical labels"),
        LossLikelihood(
            "bce", "Bernoulli", {},
            lambda logits, y: F.binary_cross_entropy_with_logits(logits, y),
            lambda logits: Bernoulli(logits=logits),
            lambda: 1.0,
            lambda: 0.0,
            _check_binary,
            "binary cross-entropy on logits. For labels t in {0, 1} it is the Bernoulli NLL; for "
            "soft targets t in [0, 1] (loss accepts them) it is the Bernoulli cross-entropy "
            "H(t, sigmoid(z)), which exceeds the NLL's minimum by H(t) and is no likelihood "
            "(nll refuses them)",
            nll_check=_check_hard_binary),
    ]
}


def get(name: str) -> LossLikelihood:
    """The registered pair called ``name``; the error lists the known names."""
    try:
        return REGISTRY[name]
    except KeyError:
        raise KeyError(f"no loss called {name!r}; known losses: {', '.join(REGISTRY)}") from None


def nll(name: str, prediction, target, **params) -> torch.Tensor:
    """Mean negative log-likelihood under the distribution that loss ``name`` assumes."""
    return get(name).nll(prediction, target, **params)


# ---------------------------------------------------------------------------------------------
# Categorical information quantities, in nats.

def _probabilities(p, name: str) -> torch.Tensor:
    p = torch.as_tensor(p)
    if not p.is_floating_point():
        p = p.to(torch.get_default_dtype())
    if p.ndim == 0 or (p < 0).any() or not torch.allclose(p.sum(-1), p.new_ones(()), atol=1e-5):
        raise ValueError(f"{name} must be probability vectors along the last axis (non-negative, summing to 1)")
    return p


def entropy(p) -> torch.Tensor:
    """H(p) = -sum p log p, with 0 log 0 = 0."""
    p = _probabilities(p, "p")
    return -torch.special.xlogy(p, p).sum(-1)


def cross_entropy(p, q) -> torch.Tensor:
    """H(p, q) = -sum p log q: the mean surprisal of data from p under the model q."""
    p, q = _probabilities(p, "p"), _probabilities(q, "q")
    return -torch.special.xlogy(p, q).sum(-1)


def kl_divergence(p, q) -> torch.Tensor:
    """KL(p || q) = H(p, q) - H(p) >= 0; infinite where q = 0 < p."""
    p, q = _probabilities(p, "p"), _probabilities(q, "q")
    return (torch.special.xlogy(p, p) - torch.special.xlogy(p, q)).sum(-1)


def soft_cross_entropy(logits: torch.Tensor, p: torch.Tensor) -> torch.Tensor:
    """Mean over rows of H(p, softmax(logits)) for soft labels p of shape (N, C)."""
    if logits.shape != p.shape or logits.ndim != 2:
        raise ValueError(f"soft labels need logits and probabilities of the same (N, C) shape, got "
                         f"{tuple(logits.shape)} and {tuple(p.shape)}")
    _probabilities(p, "soft labels p")
    return -(p * F.log_softmax(logits, dim=-1)).sum(-1).mean()
