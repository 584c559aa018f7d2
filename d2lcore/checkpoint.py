"""Checkpoints: everything a run needs to go on as if it had never stopped, written atomically
and loaded without running code.

A checkpoint holds the model and optimizer states and the history, and, for an exact resume,
what decides the rest of the run: the shuffle generator of the training batches (so the next
epoch draws the order an uninterrupted run would draw), the learning-rate scheduler's state, and
the global random-number generators (dropout, augmentation, a VAE's noise).
"""
from __future__ import annotations

import os
import warnings

import torch
from torch import nn

from d2lcore.files import write_atomically
from d2lcore.history import History


def _generator_of(data) -> torch.Generator | None:
    generator = getattr(data, "generator", None)
    return generator if isinstance(generator, torch.Generator) else None


def save_checkpoint(path: str | os.PathLike, model: nn.Module, optimizer=None, history: History | None = None,
                    *, data=None, scheduler=None) -> None:
    """Write the state of a run to ``path`` atomically: a crash or power cut leaves the previous
    checkpoint or this one, never half a file.

    Saved: the model, and where given the optimizer, the history, the shuffle generator of the
    training ``data`` (a ``d2lcore.data.Batches``, or anything with a ``generator`` attribute),
    the ``scheduler``; always the global random-number states (CPU, and CUDA once initialised).
    """
    state = {"model": model.state_dict(), "rng": {"cpu": torch.get_rng_state()}}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["rng"]["cuda"] = torch.cuda.get_rng_state_all()
    if optimizer is not None:
        state["optimizer"] = optimizer.state_dict()
    if history is not None:
        state["history"] = history.as_dict()
    if data is not None:
        generator = _generator_of(data)
        if generator is None:
            raise TypeError(f"data= is a {type(data).__name__} with no torch.Generator in .generator, so its "
                            f"order cannot be saved; pass a d2lcore.data.Batches, or leave data= out")
        state["data_generator"] = generator.get_state()
    if scheduler is not None:
        state["scheduler"] = scheduler.state_dict()
    write_atomically(path, lambda file: torch.save(state, file))


def load_checkpoint(path: str | os.PathLike, model: nn.Module, optimizer=None, *, data=None, scheduler=None,
                    rng: bool = True) -> History | None:
    """Load a checkpoint written by ``save_checkpoint`` (or ``fit(checkpoint=...)``) into ``model``,
    and where given into ``optimizer``, the training ``data``'s shuffle generator and ``scheduler``;
    with ``rng=True`` the global random-number generators are set back to where they were, so a
    resumed ``fit`` computes exactly what the uninterrupted one would have.

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
    _restore(path, state, "data_generator", data, "data", lambda s: _set_generator(data, s))
    _restore(path, state, "scheduler", scheduler, "scheduler", lambda s: scheduler.load_state_dict(s))
    if optimizer is not None and data is None and "data_generator" in state:
        warnings.warn(f"{path} holds the training batches' shuffle state, but load_checkpoint got no data=: "
                      f"a new loader starts again from the first epoch's order, so the resumed run will "
                      f"differ from an uninterrupted one; pass data=<the training batches>", stacklevel=2)
    if rng and "rng" in state:
        torch.set_rng_state(state["rng"]["cpu"].cpu())
        if "cuda" in state["rng"] and torch.cuda.is_available():
            torch.cuda.set_rng_state_all([s.cpu() for s in state["rng"]["cuda"]])
    return History.from_dict(state["history"]) if "history" in state else None


def _restore(path, state, key, target, argument, apply) -> None:
    if target is None:
        return
    if key not in state:
        raise KeyError(f"{path} holds no {argument} state; save it with {argument}= (fit(checkpoint=...) "
                       f"does), or load without {argument}=")
    apply(state[key])


def _set_generator(data, generator_state) -> None:
    generator = _generator_of(data)
    if generator is None:
        raise TypeError(f"data= is a {type(data).__name__} with no torch.Generator in .generator")
    generator.set_state(generator_state.cpu())


class Checkpoint:
    """An observer for ``fit``: after every epoch, saves what ``save_checkpoint`` saves."""

    def __init__(self, path: str | os.PathLike, model: nn.Module, optimizer=None, *, data=None, scheduler=None):
        self.path, self.model, self.optimizer = path, model, optimizer
        self.data = data if _generator_of(data) is not None else None  # any iterable may train; not all can resume
        self.scheduler = scheduler

    def on_epoch(self, history: History) -> None:
        save_checkpoint(self.path, self.model, self.optimizer, history, data=self.data, scheduler=self.scheduler)
