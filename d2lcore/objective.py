"""How one batch becomes a loss: a ``loss(output, target)`` or a ``@step`` function.

``fit`` and ``evaluate`` call ``objective_of(loss)(model, batch, first)`` and get back the batch's
named 0-d losses, its count of correct predictions (classifiers only) and its number of
examples. Checks that need no host sync run once, on the first batch.
"""
from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from typing import Any

import torch
from torch import nn

LossFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


class Step:
    """A step function, marked so that ``fit`` calls it with ``(model, batch)``; see ``step``."""

    def __init__(self, fn: Callable[[nn.Module, Any], torch.Tensor | Mapping[str, torch.Tensor]]):
        if not callable(fn):
            raise TypeError(f"step() takes a function step(model, batch), got {fn!r}")
        self.fn = fn
        functools.update_wrapper(self, fn)

    def __call__(self, model: nn.Module, batch: Any):
        return self.fn(model, batch)


def step(fn) -> Step:
    """Mark ``fn(model, batch)`` as a step function for ``fit`` and ``evaluate``.

    It returns the batch's loss as a 0-d tensor, or a dict of named 0-d tensors whose sum is the
    loss; each part is then recorded per epoch in ``History.train_parts`` / ``val_parts``::

        @d2lcore.step
        def vae_step(model, batch):
            x, _ = batch
            reconstruction, kl = model.terms(x)          # both (B,)
            return {"reconstruction": reconstruction.mean(), "kl": kl.mean()}

        history = d2lcore.fit(vae, vae_step, optimizer, train, val, epochs=10)
    """
    return fn if isinstance(fn, Step) else Step(fn)


class Supervised:
    """``loss(model(X), y)`` on ``(X, y)`` batches, with accuracy for class labels."""

    named = False

    def __init__(self, loss: LossFn):
        self.loss = loss
        self.classify = False

    def __call__(self, model, batch, first: bool):
        X, y = batch
        output = model(X)
        if first:
            _check_first_batch(output, y)
            self.classify = _is_classification(output, y)
        correct = (output.detach().argmax(dim=1) == y).sum() if self.classify else None
        return {"loss": self.loss(output, y)}, correct, y.shape[0]


class Stepwise:
    """A ``Step``: whatever the model needs, returning a loss or named parts."""

    def __init__(self, fn: Step):
        self.fn = fn
        self.named = False

    def __call__(self, model, batch, first: bool):
        result = self.fn(model, batch)
        if first:
            _check_step_result(self.fn, result)
            self.named = isinstance(result, Mapping)
        parts = dict(result) if isinstance(result, Mapping) else {"loss": result}
        return parts, None, _batch_size(batch)


def objective_of(loss):
    """How ``fit`` and ``evaluate`` turn a batch into named losses, for a loss or a ``Step``."""
    return Stepwise(loss) if isinstance(loss, Step) else Supervised(loss)


# --- checks made once, on the first batch ---------------------------------------------------

def _check_first_batch(output: torch.Tensor, y: torch.Tensor) -> None:
    """Shape and dtype checks that need no device sync."""
    if output.shape[0] != y.shape[0]:
        raise ValueError(
            f"the model returned {output.shape[0]} predictions for a batch of {y.shape[0]} targets "
            f"(output shape {tuple(output.shape)}, target shape {tuple(y.shape)})"
        )
    if output.ndim == 2 and output.shape[1] > 1 and y.ndim == 1 and y.is_floating_point():
        raise TypeError(
            f"the targets are {y.dtype} of shape {tuple(y.shape)}, but the model outputs "
            f"{output.shape[1]} class scores per example: class labels must be integer indices "
            f"(convert with y.long()); for soft labels pass a (N, {output.shape[1]}) probability tensor"
        )


def _check_step_result(fn, result) -> None:
    name = getattr(fn, "__name__", "the step function")
    hint = "return the batch's loss as a 0-d tensor (e.g. loss.mean()) or a dict of named 0-d tensors"
    items = result.items() if isinstance(result, Mapping) else [("loss", result)]
    if isinstance(result, Mapping) and not result:
        raise ValueError(f"{name} returned an empty dict; {hint}")
    for key, value in items:
        if not isinstance(key, str):
            raise TypeError(f"{name} returned a dict with the key {key!r}; name each part with a string")
        if not isinstance(value, torch.Tensor) or value.ndim != 0 or not value.is_floating_point():
            got = f"a tensor of shape {tuple(value.shape)} and dtype {value.dtype}" if isinstance(
                value, torch.Tensor) else f"a {type(value).__name__}"
            raise TypeError(f"{name} returned {got} for {key!r}; {hint}")


def first_tensor(batch: Any) -> torch.Tensor | None:
    if isinstance(batch, torch.Tensor):
        return batch
    values = batch.values() if isinstance(batch, Mapping) else batch if isinstance(batch, (list, tuple)) else ()
    for value in values:
        found = first_tensor(value)
        if found is not None:
            return found
    return None


def _batch_size(batch: Any) -> int:
    """Examples in a batch: the length of its first tensor (what the batch means weigh by)."""
    first = first_tensor(batch)
    return first.shape[0] if first is not None and first.ndim else 1


def check_devices(model: nn.Module, batch: Any) -> None:
    param, X = next(model.parameters(), None), first_tensor(batch)
    if param is not None and X is not None and param.device != X.device:
        raise RuntimeError(
            f"the model is on {param.device} but the batches are on {X.device}; move one of them, "
            f"e.g. model.to({str(X.device)!r}) or build the batches with device={str(param.device)!r}"
        )


def _is_classification(output: torch.Tensor, y: torch.Tensor) -> bool:
    return output.ndim == 2 and output.shape[1] > 1 and y.ndim == 1 and not y.is_floating_point()
