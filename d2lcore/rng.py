"""Seeded randomness that leaves the caller's random generators as they were.

Two tools, used by the data sets and the explorers alike:

- ``stream_seed(seed, stream)`` turns one integer into an unrelated seed per named stream, so
  "seed 0 for the data" and "seed 0 for the model" do not draw the same numbers;
- ``cpu_seeded(seed)`` runs a block with torch's global CPU generator seeded, then restores it,
  for code such as ``torch.distributions`` that can only sample from the global generator. It
  never calls ``torch.manual_seed``, which would also reseed every CUDA generator.
"""
from __future__ import annotations

import contextlib
import hashlib
import operator
from collections.abc import Iterator

import torch


def stream_seed(seed: int, stream: str) -> int:
    """A 63-bit seed for ``stream`` derived from ``seed`` (SHA-256 of both: fixed across runs,
    platforms and Python versions, unlike ``hash``)."""
    seed = operator.index(seed)
    digest = hashlib.sha256(f"d2lcore/{stream}/{seed}".encode()).digest()
    return int.from_bytes(digest[:8], "little") >> 1


@contextlib.contextmanager
def cpu_seeded(seed: int) -> Iterator[None]:
    """Seed the global CPU generator with ``seed`` inside the block; restore it afterwards.

    >>> with cpu_seeded(0):
    ...     a = torch.rand(2)
    >>> with cpu_seeded(0):
    ...     b = torch.rand(2)
    >>> bool(torch.equal(a, b))
    True
    """
    with torch.random.fork_rng(devices=[]):  # forks (and restores) the CPU generator only
        torch.default_generator.manual_seed(operator.index(seed))
        yield


def generator(seed: int, device: torch.device | str = "cpu") -> torch.Generator:
    """A private generator: pass it to ``torch.randn(..., generator=g)`` and friends."""
    return torch.Generator(device=device).manual_seed(operator.index(seed))
