"""Observers watch ``fit`` from outside: a progress bar, a live plot, a checkpoint, your own.

An observer is any object with some of these methods; ``fit`` calls the ones it has:

- ``on_batch()`` after every optimizer step (host-side only: it gets no tensor to read back),
- ``on_epoch(history)`` after every completed epoch, with the ``History`` so far,
- ``close()`` once at the end, also after an error or Ctrl-C.

``d2lcore.plot.LivePlot`` and ``d2lcore.checkpoint.Checkpoint`` are observers too.
"""
from __future__ import annotations

from d2lcore.history import History


class ProgressBar:
    """A tqdm bar counting batches; without a known total it counts without one."""

    def __init__(self, total_batches: int | None):
        from tqdm.auto import tqdm

        self.bar = tqdm(total=total_batches, unit="batch", leave=True)

    def on_batch(self) -> None:
        self.bar.update()

    def on_epoch(self, history: History) -> None:
        self.bar.set_postfix_str(", ".join(f"{k.replace('_', ' ')} {v:.4f}" for k, v in history.last().items()))

    def close(self) -> None:
        self.bar.close()


def notify(observers, event: str, *args) -> None:
    """Call ``event`` on every observer that has it."""
    for observer in observers:
        method = getattr(observer, event, None)
        if method is not None:
            method(*args)
