"""One training loop for every chapter: ``fit`` a plain ``nn.Module`` and get a ``History``.

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
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
from torch import nn

LossFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


@dataclass
class History:
    """Per-epoch metrics as plain floats; accuracies stay empty for regression."""

    train_loss: list[float] = field(default_factory=list)
    train_accuracy: list[float] = field(default_factory=list)
    val_loss: list[float] = field(default_factory=list)
    val_accuracy: list[float] = field(default_factory=list)
    seconds: list[float] = field(default_factory=list)
    interrupted: bool = False

    @property
    def epochs(self) -> int:
        return len(self.train_loss)

    def as_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict) -> "History":
        return cls(**values)

    def __repr__(self) -> str:
        if not self.epochs:
            return "History(no completed epochs)"
        last = {k: v[-1] for k, v in self.as_dict().items() if isinstance(v, list) and v}
        shown = ", ".join(f"{k}={v:.4f}" for k, v in last.items() if k != "seconds")
        note = ", interrupted" if self.interrupted else ""
        epochs = f"{self.epochs} epoch" + ("s" if self.epochs > 1 else "")
        return f"History({epochs}, last: {shown}{note})"


class NonFiniteLossError(FloatingPointError):
    """The loss became NaN or infinite; ``history`` holds every epoch completed before it."""

    def __init__(self, epoch: int, batch: int, value: float, history: History):
        self.epoch, self.batch, self.value, self.history = epoch, batch, value, history
        super().__init__(
            f"the training loss became {value} at epoch {epoch}, batch {batch} (both counted from 1); "
            f"lower the learning rate, clip gradients (clip_grad_norm=...), or check the inputs of "
            f"that batch for NaN. The {history.epochs} completed epoch(s) are in err.history."
        )


def _check_first_batch(output: torch.Tensor, y: torch.Tensor) -> None:
    """Shape and dtype checks that need no device sync, run once per call."""
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


def _check_devices(model: nn.Module, X: torch.Tensor) -> None:
    param = next(model.parameters(), None)
    if param is not None and isinstance(X, torch.Tensor) and param.device != X.device:
        raise RuntimeError(
            f"the model is on {param.device} but the batches are on {X.device}; move one of them, "
            f"e.g. model.to({str(X.device)!r}) or build the batches with device={str(param.device)!r}"
        )


def _is_classification(output: torch.Tensor, y: torch.Tensor) -> bool:
    return output.ndim == 2 and output.shape[1] > 1 and y.ndim == 1 and not y.is_floating_point()


def _summarise(losses: list, sizes: list[int], correct: list) -> tuple[list[float], float, float | None]:
    """Gather a pass's per-batch tensors in one transfer; weight batches by their size."""
    batch_losses = torch.stack(losses).double().cpu().tolist()
    n = sum(sizes)
    mean_loss = math.fsum(l * s for l, s in zip(batch_losses, sizes)) / n
    accuracy = float(torch.stack(correct).sum().cpu()) / n if correct else None
    return batch_losses, mean_loss, accuracy


def evaluate(model: nn.Module, loss: LossFn, data: Iterable) -> dict[str, float]:
    """Mean loss (and accuracy for classifiers) over every example in ``data``.

    Batches are weighted by their number of examples, so a short last batch counts for what it
    holds, not for a full batch. The model's train/eval mode is restored afterwards.
    """
    was_training = model.training
    model.eval()
    losses, sizes, correct = [], [], []
    try:
        with torch.inference_mode():
            for X, y in data:
                if not losses:
                    _check_devices(model, X)
                output = model(X)
                if not losses:
                    _check_first_batch(output, y)
                losses.append(loss(output, y).detach())
                sizes.append(y.shape[0])
                if _is_classification(output, y):
                    correct.append((output.argmax(dim=1) == y).sum())
    finally:
        model.train(was_training)
    if not losses:
        raise ValueError("evaluate() got no batches: the data is empty")
    _, mean_loss, accuracy = _summarise(losses, sizes, correct)
    result = {"loss": mean_loss}
    if accuracy is not None:
        result["accuracy"] = accuracy
    return result


def fit(
    model: nn.Module,
    loss: LossFn,
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
) -> History:
    """Train ``model`` for ``epochs`` passes over ``train`` and return its ``History``.

    ``train`` and ``val`` are iterables of ``(X, y)`` batches already on the model's device (a
    ``d2lcore.data.Batches`` or any loader). ``loss`` returns the batch mean, as torch losses do.
    Accuracy is tracked when the targets are class indices. Options: gradient-norm clipping,
    bfloat16 autocast on CUDA, a tqdm progress bar, a live plot redrawn in one figure, and a
    checkpoint written after every epoch; a learning-rate ``scheduler`` stepped once per epoch.

    A NaN or infinite loss raises ``NonFiniteLossError`` naming the epoch and batch. Ctrl-C
    stops training cleanly and returns the epochs completed so far (``history.interrupted``).
    """
    if not isinstance(epochs, int) or epochs < 1:
        raise ValueError(f"epochs must be a positive integer, got {epochs!r}")
    params = [p for p in model.parameters() if p.requires_grad]
    if not params:
        raise ValueError("the model has no trainable parameters")
    device = params[0].device
    if bf16 and device.type != "cuda":
        warnings.warn(f"bf16 autocast is only used on CUDA; training on {device} in float32", stacklevel=2)
    use_bf16 = bf16 and device.type == "cuda"
    autocast = (lambda: torch.autocast("cuda", dtype=torch.bfloat16)) if use_bf16 else contextlib.nullcontext

    history = History()
    bar = _progress_bar(epochs * _length(train), progress)
    plotter = _live_plot(live_plot)
    epoch, classify = 0, False
    try:
        for epoch in range(1, epochs + 1):
            start = time.perf_counter()
            model.train()
            losses, sizes, correct = [], [], []
            for X, y in train:
                first = epoch == 1 and not losses
                if first:
                    _check_devices(model, X)
                with autocast():
                    output = model(X)
                    if first:
                        _check_first_batch(output, y)
                        classify = _is_classification(output, y)
                    batch_loss = loss(output, y)
                optimizer.zero_grad(set_to_none=True)
                batch_loss.backward()
                if clip_grad_norm is not None:
                    nn.utils.clip_grad_norm_(params, clip_grad_norm)
                optimizer.step()
                # Kept on the device: reading them here would sync every batch.
                losses.append(batch_loss.detach())
                sizes.append(y.shape[0])
                if classify:
                    correct.append((output.detach().argmax(dim=1) == y).sum())
                if bar is not None:
                    bar.update()
            if not losses:
                raise ValueError("the training data produced no batches: it is empty")
            batch_losses, train_loss, train_acc = _summarise(losses, sizes, correct)
            if not math.isfinite(train_loss):
                bad = next(i for i, v in enumerate(batch_losses) if not math.isfinite(v))
                raise NonFiniteLossError(epoch, bad + 1, batch_losses[bad], history)
            _record(history, "train", train_loss, train_acc)
            if val is not None:
                metrics = evaluate(model, loss, val)
                _record(history, "val", metrics["loss"], metrics.get("accuracy"))
            history.seconds.append(time.perf_counter() - start)
            if scheduler is not None:  # a per-epoch learning-rate schedule, e.g. CosineAnnealingLR(opt, epochs)
                scheduler.step()
            if bar is not None:
                bar.set_postfix_str(_postfix(history))
            if plotter is not None:
                plotter.update(history)
            if checkpoint is not None:
                save_checkpoint(checkpoint, model, optimizer, history)
    except KeyboardInterrupt:
        history.interrupted = True
        print(f"Training interrupted during epoch {epoch}; returning the {history.epochs} completed epoch(s).")
    finally:
        if bar is not None:
            bar.close()
        if plotter is not None:
            plotter.close()
    return history


def _record(history: History, split: str, loss: float, accuracy: float | None) -> None:
    getattr(history, f"{split}_loss").append(loss)
    if accuracy is not None:
        getattr(history, f"{split}_accuracy").append(accuracy)


def _postfix(history: History) -> str:
    parts = [f"train loss {history.train_loss[-1]:.4f}"]
    for name in ("val_loss", "train_accuracy", "val_accuracy"):
        values = getattr(history, name)
        if values:
            parts.append(f"{name.replace('_', ' ')} {values[-1]:.4f}")
    return ", ".join(parts)


def _length(data: Iterable) -> int | None:
    try:
        return len(data)  # type: ignore[arg-type]
    except TypeError:
        return None


def _progress_bar(total_batches: int | None, enabled: bool):
    if not enabled:
        return None
    from tqdm.auto import tqdm

    return tqdm(total=total_batches, unit="batch", leave=True)


def _live_plot(enabled: bool):
    if not enabled:
        return None
    from d2lcore.plot import LivePlot

    return LivePlot()


def save_checkpoint(path: str | os.PathLike, model: nn.Module, optimizer=None, history: History | None = None) -> None:
    """Write model (and optimizer, history) state atomically: a crash never leaves half a file."""
    path = Path(path)
    state = {"model": model.state_dict()}
    if optimizer is not None:
        state["optimizer"] = optimizer.state_dict()
    if history is not None:
        state["history"] = history.as_dict()
    tmp = path.with_name(path.name + ".tmp")
    torch.save(state, tmp)
    os.replace(tmp, path)


def load_checkpoint(path: str | os.PathLike, model: nn.Module, optimizer=None) -> History | None:
    """Load a checkpoint written by ``save_checkpoint`` into ``model`` (and ``optimizer``).

    Uses ``weights_only=True``: a checkpoint can hold tensors and plain containers, never code.
    Returns the saved ``History``, or ``None`` if it had none.
    """
    param = next(model.parameters(), None)
    state = torch.load(path, weights_only=True, map_location=param.device if param is not None else "cpu")
    model.load_state_dict(state["model"])
    if optimizer is not None:
        if "optimizer" not in state:
            raise KeyError(f"{path} holds no optimizer state; load it without optimizer=")
        optimizer.load_state_dict(state["optimizer"])
    return History.from_dict(state["history"]) if "history" in state else None
