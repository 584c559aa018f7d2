"""One figure style for the whole book, and the two plots every chapter needs."""
from __future__ import annotations

from collections.abc import Sequence

import matplotlib
import matplotlib.pyplot as plt
import torch

STYLE = {
    "figure.figsize": (6.0, 3.6),
    "figure.dpi": 100,
    "savefig.dpi": 150,
    "font.size": 10,
    "axes.titlesize": 11,
    "axes.labelsize": 10,
    "axes.grid": True,
    "grid.alpha": 0.3,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "legend.frameon": False,
    "lines.linewidth": 1.8,
    "image.cmap": "gray_r",
}


def use_style() -> None:
    """Apply the book's figure style to matplotlib's global settings."""
    matplotlib.rcParams.update(STYLE)


def history(hist, axes=None):
    """Plot loss per epoch, then accuracy (classifiers) or each named part (step functions).

    Returns the figure; pass ``axes`` (from an earlier call) to redraw into the same panels.
    """
    has_acc = bool(hist.train_accuracy or hist.val_accuracy)
    has_parts = bool(hist.train_parts or hist.val_parts)
    n = 1 + has_acc + has_parts
    if axes is None:
        fig, axes = plt.subplots(1, n, figsize=(5.0 + 3.5 * (n - 1), 3.2), squeeze=False)
        axes = axes[0]
    else:
        axes = list(axes) if isinstance(axes, Sequence) else [axes]
        fig = axes[0].figure
    for ax in axes:
        ax.clear()
    _series(axes[0], hist.train_loss, hist.val_loss, "loss", "Loss per epoch")
    if has_acc and len(axes) > 1:
        _series(axes[1], hist.train_accuracy, hist.val_accuracy, "accuracy", "Accuracy per epoch")
    if has_parts and len(axes) > 1 + has_acc:
        ax = axes[1 + has_acc]
        for i, name in enumerate(dict.fromkeys([*hist.train_parts, *hist.val_parts])):
            colour = f"C{i}"
            for values, label, style in ((hist.train_parts.get(name), name, "-o"),
                                         (hist.val_parts.get(name), f"{name} (validation)", "--s")):
                if values:
                    ax.plot(range(1, len(values) + 1), values, style, color=colour, label=label, markersize=4)
        ax.set(xlabel="epoch", ylabel="part of the loss", title="Named parts per epoch")
        ax.xaxis.get_major_locator().set_params(integer=True)
        ax.legend()
    fig.tight_layout()
    return fig


def _series(ax, train, val, ylabel, title):
    for values, label, style in ((train, "train", "-o"), (val, "validation", "--s")):
        if values:
            ax.plot(range(1, len(values) + 1), values, style, label=label, markersize=4)
    ax.set(xlabel="epoch", ylabel=ylabel, title=title)
    ax.xaxis.get_major_locator().set_params(integer=True)
    ax.legend()


def images(imgs, titles: Sequence[str] | None = None, ncols: int = 8, scale: float = 1.3):
    """Show images (N, H, W) or (N, 1, H, W) in a grid with optional titles; a 2-D tensor
    (for example from ``d2lcore.data.image_grid``) is shown as one picture. Returns the figure."""
    imgs = torch.as_tensor(imgs).detach().cpu()
    if imgs.ndim == 2:
        fig, ax = plt.subplots(figsize=(scale * 4, scale * 4 * imgs.shape[0] / imgs.shape[1]))
        ax.imshow(imgs.float().numpy(), interpolation="nearest")
        ax.set_axis_off()
        return fig
    if imgs.ndim == 4 and imgs.shape[1] == 1:
        imgs = imgs[:, 0]
    if imgs.ndim != 3 or len(imgs) == 0:
        raise ValueError(f"images() expects (N, H, W), (N, 1, H, W) or one 2-D grid; got shape {tuple(imgs.shape)}")
    if titles is not None and len(titles) != len(imgs):
        raise ValueError(f"got {len(titles)} titles for {len(imgs)} images")
    ncols = min(ncols, len(imgs))
    nrows = -(-len(imgs) // ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(scale * ncols, scale * nrows * 1.15), squeeze=False)
    for i, ax in enumerate(axes.flat):
        ax.set_axis_off()
        if i < len(imgs):
            ax.imshow(imgs[i].float().numpy(), interpolation="nearest")
            if titles is not None:
                ax.set_title(titles[i], fontsize=8)
    fig.tight_layout()
    return fig


class LivePlot:
    """A training-history figure redrawn in place once per epoch.

    In Jupyter the figure is shown once through a display handle and then updated, so the cell
    output holds one figure, not one per epoch. Outside Jupyter it only keeps the figure.
    """

    def __init__(self):
        self.figure = None
        self._handle = None

    def update(self, hist) -> None:
        if self.figure is None:
            self.figure = history(hist)
            self._axes = self.figure.axes
            self._handle = _display(self.figure)
        else:
            history(hist, axes=self._axes)
            if self._handle is not None:
                self._handle.update(self.figure)

    on_epoch = update  # as an observer of d2lcore.fit

    def close(self) -> None:
        if self.figure is not None:
            plt.close(self.figure)  # it stays in the output; this stops a second inline copy


def _display(fig):
    try:
        from IPython import get_ipython
        from IPython.display import display
    except ImportError:
        return None
    if get_ipython() is None:
        return None
    return display(fig, display_id=True)
