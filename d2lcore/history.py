"""What ``fit`` returns: per-epoch metrics as plain floats, ready to plot, check and save."""
from __future__ import annotations

from dataclasses import asdict, dataclass, field


@dataclass
class History:
    """Per-epoch metrics as plain floats; every list has one entry per completed epoch.

    ``train_loss`` / ``val_loss`` are the mean objective over the examples of each pass.
    Accuracies stay empty unless the model is a classifier trained with a loss. A step function
    that returns named parts (say ``{"reconstruction": ..., "kl": ...}``) gets each part's mean
    in ``train_parts[name]`` / ``val_parts[name]``, and their sum in ``train_loss`` / ``val_loss``.
    """

    train_loss: list[float] = field(default_factory=list)
    train_accuracy: list[float] = field(default_factory=list)
    val_loss: list[float] = field(default_factory=list)
    val_accuracy: list[float] = field(default_factory=list)
    seconds: list[float] = field(default_factory=list)
    train_parts: dict[str, list[float]] = field(default_factory=dict)
    val_parts: dict[str, list[float]] = field(default_factory=dict)
    interrupted: bool = False

    @property
    def epochs(self) -> int:
        return len(self.train_loss)

    def record(self, split: str, loss: float, accuracy: float | None, parts: dict[str, float]) -> None:
        """Append one pass's means to the ``split`` ("train" or "val") columns."""
        getattr(self, f"{split}_loss").append(loss)
        if accuracy is not None:
            getattr(self, f"{split}_accuracy").append(accuracy)
        for name, value in parts.items():
            getattr(self, f"{split}_parts").setdefault(name, []).append(value)

    def last(self) -> dict[str, float]:
        """The latest value of every non-empty column, parts as ``train_<name>``."""
        values = {k: v[-1] for k, v in self.as_dict().items() if isinstance(v, list) and v and k != "seconds"}
        for split in ("train", "val"):
            values.update({f"{split}_{k}": v[-1] for k, v in getattr(self, f"{split}_parts").items() if v})
        return values

    def as_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict) -> "History":
        return cls(**values)

    def __repr__(self) -> str:
        if not self.epochs:
            return "History(no completed epochs)"
        shown = ", ".join(f"{k}={v:.4f}" for k, v in self.last().items())
        note = ", interrupted" if self.interrupted else ""
        epochs = f"{self.epochs} epoch" + ("s" if self.epochs > 1 else "")
        return f"History({epochs}, last: {shown}{note})"
