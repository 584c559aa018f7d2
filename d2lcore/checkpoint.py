"""Checkpoints: model, optimizer and history written atomically, loaded without running code."""
from __future__ import annotations

import os
from pathlib import Path

import torch
from torch import nn

from d2lcore.history import History


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


class Checkpoint:
    """An observer for ``fit``: saves model, optimizer and history after every epoch."""

    def __init__(self, path: str | os.PathLike, model: nn.Module, optimizer=None):
        self.path, self.model, self.optimizer = path, model, optimizer

    def on_epoch(self, history: History) -> None:
        save_checkpoint(self.path, self.model, self.optimizer, history)
