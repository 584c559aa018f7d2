"""Minibatches sliced from tensors that already sit on the target device.

Datasets in this book fit in memory, so the fastest loader is no loader: move the tensors to
the device once, draw one permutation per epoch from a seeded generator, and index. There are
no worker processes and no per-example Python.
"""
from __future__ import annotations

from collections.abc import Callable, Iterator

import torch

from d2lcore.device import to_device


class Batches:
    """Iterate over aligned tensors (for example features and labels) in minibatches.

    ``transform`` is applied to the first tensor of each batch on the device, so data can be
    kept compactly and converted one batch at a time (a per-batch augmentation fits here too). With
    ``shuffle=True`` each pass draws a fresh permutation from a generator seeded with ``seed``,
    so the sequence of epochs is reproducible.
    """

    def __init__(
        self,
        *tensors: torch.Tensor,
        batch_size: int,
        shuffle: bool = False,
        seed: int = 0,
        device: torch.device | str | None = None,
        transform: Callable[[torch.Tensor], torch.Tensor] | None = None,
        drop_last: bool = False,
    ):
        if not tensors:
            raise ValueError("Batches needs at least one tensor, for example Batches(X, y, batch_size=32)")
        n = len(tensors[0])
        if n == 0:
            raise ValueError("the dataset is empty (0 examples); check the split or the filter that built it")
        for i, t in enumerate(tensors):
            if not isinstance(t, torch.Tensor):
                raise TypeError(f"tensor {i} is a {type(t).__name__}, not a torch.Tensor")
            if len(t) != n:
                raise ValueError(
                    f"tensors disagree on the number of examples: tensor 0 has {n}, tensor {i} has {len(t)}"
                )
        if not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
        self.device = torch.device(device) if device is not None else tensors[0].device
        self.tensors = tuple(to_device(t, self.device) for t in tensors)
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.transform = transform
        self.drop_last = drop_last
        self.generator = torch.Generator(device="cpu").manual_seed(seed)

    @property
    def num_examples(self) -> int:
        return len(self.tensors[0])

    def __len__(self) -> int:
        full, rest = divmod(self.num_examples, self.batch_size)
        return full + (1 if rest and not self.drop_last else 0)

    def __iter__(self) -> Iterator[tuple[torch.Tensor, ...]]:
        n, size = self.num_examples, self.batch_size
        order = None
        if self.shuffle:
            # Drawn on the CPU so the sequence is the same on every device; moved once per epoch.
            order = torch.randperm(n, generator=self.generator).to(self.device)
        for start in range(0, len(self) * size, size):
            if order is None:
                batch = tuple(t[start : start + size] for t in self.tensors)
            else:
                index = order[start : start + size]
                batch = tuple(torch.index_select(t, 0, index) for t in self.tensors)
            if self.transform is not None:
                batch = (self.transform(batch[0]), *batch[1:])
            yield batch

    def __repr__(self) -> str:
        return (
            f"Batches({self.num_examples} examples, batch_size={self.batch_size}, "
            f"shuffle={self.shuffle}, device={self.device})"
        )

