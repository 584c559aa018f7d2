"""Choose where tensors live, and move batches there.

The order is CUDA, then Apple's MPS, then the CPU. ``D2LCORE_DEVICE`` (for example ``cpu``
or ``cuda:1``) overrides the choice, so a notebook runs unchanged on any machine and a reader
can still force a device without editing code.
"""
from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

import torch

ENV_VAR = "D2LCORE_DEVICE"


def _available(kind: str) -> bool:
    if kind == "cuda":
        return torch.cuda.is_available()
    if kind == "mps":
        return getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available()
    return kind == "cpu"


def choose_device(name: str | torch.device | None = None) -> torch.device:
    """Return ``name`` as a device, else ``$D2LCORE_DEVICE``, else the best available one.

    An unknown or unavailable device is an error, never a silent fallback to the CPU.
    """
    source = "argument"
    if name is None:
        name = os.environ.get(ENV_VAR) or None
        source = f"${ENV_VAR}"
    if name is None:
        for kind in ("cuda", "mps"):
            if _available(kind):
                return torch.device(kind)
        return torch.device("cpu")
    try:
        device = torch.device(name)
    except (RuntimeError, TypeError) as err:
        raise ValueError(
            f"unknown device {name!r} (from the {source}); use 'cpu', 'cuda', 'cuda:N' or 'mps'"
        ) from err
    if not _available(device.type):
        raise RuntimeError(
            f"device {str(device)!r} (from the {source}) is not available on this machine; "
            f"leave it unset to pick the best available device, or use 'cpu'"
        )
    if device.type == "cuda" and device.index is not None and device.index >= torch.cuda.device_count():
        raise RuntimeError(
            f"device {str(device)!r} (from the {source}) does not exist: "
            f"this machine has {torch.cuda.device_count()} CUDA device(s)"
        )
    return device


def to_device(batch: Any, device: torch.device | str) -> Any:
    """Move a tensor, or tensors nested in tuples, lists and dicts, to ``device``.

    Copies from pinned host memory to CUDA are issued with ``non_blocking=True`` so they overlap
    with compute; other values (numbers, strings) pass through unchanged.
    """
    device = torch.device(device)
    if isinstance(batch, torch.Tensor):
        non_blocking = device.type == "cuda" and batch.device.type == "cpu" and batch.is_pinned()
        return batch.to(device, non_blocking=non_blocking)
    if isinstance(batch, Mapping):
        return type(batch)((k, to_device(v, device)) for k, v in batch.items())
    if isinstance(batch, tuple) and hasattr(batch, "_fields"):  # a namedtuple
        return type(batch)(*(to_device(v, device) for v in batch))
    if isinstance(batch, (list, tuple)):
        return type(batch)(to_device(v, device) for v in batch)
    return batch
