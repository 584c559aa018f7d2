"""One training loop for every model in the book: ``fit`` a plain ``nn.Module``, get a ``History``.

What differs between models is how one batch becomes a loss, never a flag of ``fit``:

- a classifier or a regression model passes ``loss(output, target)``, as torch losses are, and
  ``fit`` calls ``loss(model(X), y)`` on each ``(X, y)`` batch (accuracy is tracked for class
  labels);
- any other model (a VAE, a language model, a diffusion model) passes a step function marked
  with ``@d2lcore.step``: ``step(model, batch)`` returns the batch's loss as a 0-d tensor, or a
  dict of named 0-d parts that ``fit`` sums to optimise and records one by one.

The loop never reads a number back from the device while it runs through a batch: losses and
correct-prediction counts stay on the device as 0-d tensors and are gathered once per epoch.
That is what keeps it as fast as a hand-written loop on a GPU, where every ``.item()`` would
stall the queue of kernels.
"""
from __future__ import annotations

import contextlib
import math
import os
import time
import warnings
from collections.abc import Iterable

import torch
from torch import nn

from d2lcore.checkpoint import Checkpoint, load_checkpoint, save_checkpoint
from d2lcore.history import History
from d2lcore.objective import Step, check_devices, objective_of, step
from d2lcore.observers import ProgressBar, notify

__all__ = ["History", "NonFiniteLossError", "Step", "evaluate", "fit", "load_checkpoint", "save_checkpoint", "step"]


class NonFiniteLossError(FloatingPointError):
    """The loss (or one named part) became NaN or infinite; ``history`` holds every epoch
    completed before it."""

    def __init__(self, epoch: int, batch: int, value: float, history: History, part: str | None = None):
        self.epoch, self.batch, self.value, self.history, self.part = epoch, batch, value, history, part
        what = "the training loss" if part is None else f"the part {part!r} of the training loss"
        super().__init__(
            f"{what} became {value} at epoch {epoch}, batch {batch} (both counted from 1); "
            f"lower the learning rate, clip gradients (clip_grad_norm=...), or check the inputs of "
            f"that batch for NaN. The {history.epochs} completed epoch(s) are in err.history."
        )


# --- numbers kept on the device ------------------------------------------------------------

class _Pass:
    """One pass over the data: per-batch parts kept on the device, summarised in one transfer."""

    def __init__(self):
        self.parts: dict[str, list[torch.Tensor]] = {}
        self.sizes: list[int] = []
        self.correct: list[torch.Tensor] = []

    def add(self, parts: dict[str, torch.Tensor], correct, size: int) -> None:
        for name, value in parts.items():
            self.parts.setdefault(name, []).append(value.detach())
        self.sizes.append(size)
        if correct is not None:
            self.correct.append(correct)

    def __len__(self) -> int:
        return len(self.sizes)

    def summary(self) -> tuple[dict[str, list[float]], dict[str, float], float | None]:
        """Per-batch values and size-weighted means of every part, and the accuracy."""
        names = list(self.parts)
        stacked = torch.stack([torch.stack(self.parts[n]).double() for n in names])  # (parts, batches)
        counts = torch.stack(self.correct).sum().reshape(1).double() if self.correct else stacked.new_zeros(0)
        values = torch.cat([stacked.flatten(), counts.to(stacked.device)]).cpu().tolist()  # the one sync
        per_batch = {n: values[i * len(self) : (i + 1) * len(self)] for i, n in enumerate(names)}
        n = sum(self.sizes)
        means = {k: math.fsum(v * s for v, s in zip(vs, self.sizes)) / n for k, vs in per_batch.items()}
        accuracy = values[-1] / n if self.correct else None
        return per_batch, means, accuracy


def _split_means(means: dict[str, float], named: bool) -> tuple[float, dict[str, float]]:
    return (math.fsum(means.values()), means) if named else (means["loss"], {})


# --- evaluate and fit -----------------------------------------------------------------------

def _evaluate(model: nn.Module, objective, data: Iterable) -> tuple[float, float | None, dict[str, float]]:
    was_training = model.training
    model.eval()
    seen = _Pass()
    try:
        with torch.inference_mode():
            for batch in data:
                first = not len(seen)
                if first:
                    check_devices(model, batch)
                seen.add(*objective(model, batch, first))
    finally:
        model.train(was_training)
    if not len(seen):
        raise ValueError("evaluate() got no batches: the data is empty")
    _, means, accuracy = seen.summary()
    loss, parts = _split_means(means, objective.named)
    return loss, accuracy, parts


def evaluate(model: nn.Module, loss, data: Iterable) -> dict[str, float]:
    """Mean loss (and accuracy for classifiers, and each named part of a step) over ``data``.

    ``loss`` is a ``loss(output, target)`` or a ``@step`` function, as for ``fit``. Batches are
    weighted by their number of examples, so a short last batch counts for what it holds. The
    model's train/eval mode is restored afterwards.
    """
    value, accuracy, parts = _evaluate(model, objective_of(loss), data)
    result = {"loss": value, **parts}
    if accuracy is not None:
        result["accuracy"] = accuracy
    return result


def fit(
    model: nn.Module,
    loss,
    optimizer: torch.optim.Optimizer,
    train: Iterable,
    val: Iterable | None = None,
    epochs: int = 1,
    *,
    clip_grad_norm: float | None = None,
    bf16: bool = False,
    progress: bool = True,
    live_plot: bool = False,
    checkpoint: str | os.PathLike | None = None,
    scheduler=None,
    observers: Iterable = (),
) -> History:
    """Train ``model`` for ``epochs`` passes over ``train`` and return its ``History``.

    ``loss`` is either ``loss(output, target)`` returning the batch mean, as torch losses do,
    for ``(X, y)`` batches; or a step function marked with ``@d2lcore.step`` (see ``step``) for
    any other batch. ``train`` and ``val`` are iterables of batches already on the model's
    device (a ``d2lcore.data.Batches`` or any loader; one without ``len`` is fine, and a
    one-shot generator is fine for one epoch). Options: gradient-norm clipping, bfloat16
    autocast on CUDA, a learning-rate ``scheduler`` stepped once per epoch, and observers of
    each epoch (see ``d2lcore.observers``): a tqdm progress bar, a live plot redrawn in one
    figure, a checkpoint written after every epoch, and any of your own. A run resumed from
    that checkpoint (``load_checkpoint(path, model, optimizer, data=train, scheduler=...)``, then
    ``fit`` for the remaining epochs) computes what the uninterrupted run would have.

    A NaN or infinite loss (or part) raises ``NonFiniteLossError`` naming the epoch, the batch
    and the part. Ctrl-C stops training cleanly and returns the epochs completed so far
    (``history.interrupted``); an epoch interrupted during validation is dropped whole, so every
    column of the history has the same length.
    """
    if not isinstance(epochs, int) or epochs < 1:
        raise ValueError(f"epochs must be a positive integer, got {epochs!r}")
    params = [p for p in model.parameters() if p.requires_grad]
    if not params:
        raise ValueError("the model has no trainable parameters")
    if epochs > 1 and _is_one_shot(train):
        raise TypeError(
            f"train is a {type(train).__name__}, which is used up after one pass, but epochs={epochs}; "
            f"pass something that can be iterated again (a d2lcore.data.Batches, a list, or an object "
            f"whose __iter__ starts a new pass), or train for one epoch")
    device = params[0].device
    if bf16 and device.type != "cuda":
        warnings.warn(f"bf16 autocast is only used on CUDA; training on {device} in float32", stacklevel=2)
    autocast = ((lambda: torch.autocast("cuda", dtype=torch.bfloat16)) if bf16 and device.type == "cuda"
                else contextlib.nullcontext)
    objective = objective_of(loss)
    val_objective = objective_of(loss)

    history = History()
    watching = _observers(progress, live_plot, checkpoint, model, optimizer, scheduler, epochs, train, observers)
    epoch, stage = 0, "training"
    try:
        for epoch in range(1, epochs + 1):
            start, stage = time.perf_counter(), "training"
            model.train()
            seen = _Pass()
            for batch in train:
                first = epoch == 1 and not len(seen)
                if first:
                    check_devices(model, batch)
                with autocast():
                    parts, correct, size = objective(model, batch, first)
                    total = sum(parts.values()) if objective.named else parts["loss"]
                optimizer.zero_grad(set_to_none=True)
                total.backward()
                if clip_grad_norm is not None:
                    nn.utils.clip_grad_norm_(params, clip_grad_norm)
                optimizer.step()
                seen.add(parts, correct, size)  # kept on the device: reading it here would sync
                notify(watching, "on_batch")
            if not len(seen):
                again = " (a generator is used up after one pass)" if epoch > 1 else ""
                raise ValueError(f"the training data produced no batches in epoch {epoch}{again}: it is empty")
            per_batch, means, accuracy = seen.summary()
            _stop_if_not_finite(per_batch, objective.named, epoch, history)
            train_loss, train_parts = _split_means(means, objective.named)
            val_metrics = None
            if val is not None:
                stage = "validation"
                val_metrics = _evaluate(model, val_objective, val)
            # Record the epoch only now, all columns at once: Ctrl-C above leaves none half-written.
            history.record("train", train_loss, accuracy, train_parts)
            if val_metrics is not None:
                history.record("val", *val_metrics)
            history.seconds.append(time.perf_counter() - start)
            stage = "the end of the epoch"
            if scheduler is not None:  # a per-epoch learning-rate schedule, e.g. CosineAnnealingLR(opt, epochs)
                scheduler.step()
            notify(watching, "on_epoch", history)
    except KeyboardInterrupt:
        history.interrupted = True
        print(f"Training interrupted during epoch {epoch} ({stage}); "
              f"returning the {history.epochs} completed epoch(s).")
    finally:
        notify(watching, "close")
    return history


def _stop_if_not_finite(per_batch: dict[str, list[float]], named: bool, epoch: int, history: History) -> None:
    """Raise for the first batch (then the first part) whose value is NaN or infinite."""
    for b in range(len(next(iter(per_batch.values())))):
        for name, values in per_batch.items():
            if not math.isfinite(values[b]):
                raise NonFiniteLossError(epoch, b + 1, values[b], history, part=name if named else None)


def _observers(progress, live_plot, checkpoint, model, optimizer, scheduler, epochs, train, extra) -> list:
    watching = []
    if progress:
        length = _length(train)
        watching.append(ProgressBar(None if length is None else epochs * length))
    if live_plot:
        from d2lcore.plot import LivePlot  # matplotlib only when asked for

        watching.append(LivePlot())
    if checkpoint is not None:
        watching.append(Checkpoint(checkpoint, model, optimizer, data=train, scheduler=scheduler))
    return watching + list(extra)


def _length(data: Iterable) -> int | None:
    try:
        return len(data)  # type: ignore[arg-type]
    except TypeError:
        return None


def _is_one_shot(data: Iterable) -> bool:
    """A generator or other iterator: iterating it again gives nothing."""
    return iter(data) is data
