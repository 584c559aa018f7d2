"""W14 Convolution and pooling: a kernel tests one small pattern everywhere; pooling buys a
little invariance to shifts.

Controls: the kernel (edge x, edge y, blur, sharpen, one of six random kernels, or one of six
"learned" ones), the image (one of six), the pooling kind and window, a shift of the image to
the right by 0-4 pixels, and the input pixel whose pooled unit is followed. Panels, left to
right: the (shifted) image with the chosen unit's receptive field; the kernel; the feature map,
the cross-correlation of the image with the kernel under "same" zero padding (as ``F.conv2d``
computes it, section 7.2); the pooled map, windows of size p with stride p (p = 1: no pooling);
and how much each pooled value moved because of the shift.

Numbers: the relative change ||f(shifted) - f(original)|| / ||f(original)||, computed for the
feature map (no pooling) and for the pooled map, both at the same positions. A shift smaller than
the pooling window changes the pooled map less than the feature map; a shift by a whole window
moves the pooled map by one unit, so pooling buys invariance only to shifts smaller than it.

The receptive field of pooled unit (i, j) is the set of input pixels it depends on: rows
i p - h to i p + p - 1 + h (h = k // 2 for a k x k kernel), clipped to the image, and the same for
columns; the tests check it against autograd.

Defaults, deterministic and computed in closed form (no data, no training): six 28 x 28 images of
simple shapes, kept 5 pixels away from every border so that a shift of up to 4 pixels loses
nothing; six random 5 x 5 kernels from a private generator; and as the "learned" set six 5 x 5
Gabor filters at orientations 0, 30, ..., 150 degrees, the oriented-edge pattern first layers of
trained networks are known to resemble. Section 7.6 passes the kernels its LeNet learned and
FashionMNIST images instead: ``explorer(kernels=..., images=..., image_names=...)`` or
``show(kernels=..., images=...)``, with six kernels (6, k, k) or (6, 1, k, k), k odd, and six
images (6, 28, 28) in [0, 1].

Aha: a convolution tests one small pattern everywhere; pooling buys a little invariance to shifts.
"""
from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from d2lcore.explore import toolkit
from d2lcore.explore.toolkit import Choice, Explorer, Slider, panels, show as _show, validate

KERNELS = ("edge x", "edge y", "blur", "sharpen", "random", "learned")
SIZE, COUNT, MAX_SHIFT = 28, 6, 4

CONTROLS = (
    Choice("kernel", "kernel", KERNELS, "edge x"),
    Slider("kernel_number", "which random or learned kernel", 0, COUNT - 1, 1, 0, integer=True),
    Slider("image", "image", 0, COUNT - 1, 1, 2, integer=True),
    Choice("pool", "pooling", ("max", "average"), "max"),
    Slider("pool_size", "pooling window p (stride p; 1 = none)", 1, 4, 1, 2, integer=True),
    Slider("shift", "shift the image right by (pixels)", 0, MAX_SHIFT, 1, 1, integer=True),
    Slider("row", "chosen unit: input row", 0, SIZE - 1, 1, 14, integer=True),
    Slider("col", "chosen unit: input column", 0, SIZE - 1, 1, 14, integer=True),
)

SOBEL = np.array([[1.0, 0.0, -1.0], [2.0, 0.0, -2.0], [1.0, 0.0, -1.0]]) / 4
FIXED = {
    "edge x": SOBEL,
    "edge y": SOBEL.T.copy(),
    "blur": np.array([[1.0, 2.0, 1.0], [2.0, 4.0, 2.0], [1.0, 2.0, 1.0]]) / 16,
    "sharpen": np.array([[0.0, -1.0, 0.0], [-1.0, 5.0, -1.0], [0.0, -1.0, 0.0]]),
}


def gabor_kernels(size: int = 5, count: int = COUNT) -> np.ndarray:
    """``count`` Gabor filters (a cosine wave under a Gaussian window) at evenly spaced
    orientations, each with mean 0 and unit norm: (count, size, size)."""
    r = np.arange(size) - size // 2
    y, x = np.meshgrid(r, r, indexing="ij")
    out = []
    for theta in np.arange(count) * math.pi / count:
        u = x * math.cos(theta) + y * math.sin(theta)
        g = np.exp(-(x**2 + y**2) / (2 * 1.2**2)) * np.cos(2 * math.pi * u / 4.0)
        g = g - g.mean()
        out.append(g / np.linalg.norm(g))
    return np.stack(out)


def random_kernels(size: int = 5, count: int = COUNT, seed: int = 14) -> np.ndarray:
    g = toolkit.generator(seed)
    return torch.randn(count, size, size, generator=g, dtype=torch.float64).numpy() / size


def shape_images() -> tuple[np.ndarray, tuple[str, ...]]:
    """Six 28 x 28 images of shapes in [0, 1], inside rows and columns 5-22."""
    r = np.arange(SIZE)
    y, x = np.meshgrid(r, r, indexing="ij")
    inside = (y >= 5) & (y <= 22) & (x >= 5) & (x <= 22)
    images = {
        "square": ((abs(y - 13.5) <= 6) & (abs(x - 13.5) <= 6)).astype(float),
        "cross": (((abs(y - 13.5) <= 1.5) | (abs(x - 13.5) <= 1.5)) & inside).astype(float),
        "ring": (abs(np.hypot(y - 13.5, x - 13.5) - 6) <= 1.5).astype(float),
        "diagonal bar": ((abs(y - x) <= 1.5) & inside).astype(float),
        "letter T": ((((y >= 6) & (y <= 8)) | (abs(x - 13.5) <= 1.5)) & inside
                     & (x >= 6) & (x <= 21) & (y >= 6) & (y <= 21)).astype(float),
        "soft blob": np.exp(-((y - 13.5) ** 2 + (x - 12) ** 2) / (2 * 3.0**2)) * inside,
    }
    return np.stack(list(images.values())), tuple(images)


RANDOM = random_kernels()
GABOR = gabor_kernels()
SHAPES, SHAPE_NAMES = shape_images()


def _kernels(kernels) -> np.ndarray:
    k = np.asarray(kernels.detach().cpu() if isinstance(kernels, torch.Tensor) else kernels, dtype=np.float64)
    if k.ndim == 4 and k.shape[1] == 1:
        k = k[:, 0]
    if k.ndim != 3 or k.shape[0] != COUNT or k.shape[1] != k.shape[2] or k.shape[1] % 2 == 0 or k.shape[1] > 9:
        raise ValueError(f"kernels must have shape ({COUNT}, k, k) or ({COUNT}, 1, k, k) with k odd and at "
                         f"most 9, for example a first convolution nn.Conv2d(1, 6, 5).weight; got {k.shape}")
    if not np.isfinite(k).all():
        raise ValueError("kernels must be finite")
    return k


def _images(images) -> np.ndarray:
    x = np.asarray(images.detach().cpu() if isinstance(images, torch.Tensor) else images, dtype=np.float64)
    if x.ndim == 4 and x.shape[1] == 1:
        x = x[:, 0]
    if x.shape != (COUNT, SIZE, SIZE) or not np.isfinite(x).all():
        raise ValueError(f"images must have shape ({COUNT}, {SIZE}, {SIZE}) (or with a channel axis of 1), "
                         f"finite, e.g. FashionMNIST images / 255; got {x.shape}")
    return x


def shift_right(image: np.ndarray, k: int) -> np.ndarray:
    """The image moved k pixels to the right, zeros entering on the left."""
    out = np.zeros_like(image)
    out[:, k:] = image[:, : image.shape[1] - k]
    return out


def feature_map(image: np.ndarray, kernel: np.ndarray) -> np.ndarray:
    """Cross-correlation with "same" zero padding (odd kernel): (28, 28) -> (28, 28)."""
    x = torch.from_numpy(image)[None, None]
    w = torch.from_numpy(kernel)[None, None]
    return F.conv2d(x, w, padding=kernel.shape[0] // 2)[0, 0].numpy()


def pool2d(fmap: np.ndarray, kind: str, p: int) -> np.ndarray:
    """Windows p x p with stride p (a last partial window is dropped); p = 1 returns the map."""
    if p == 1:
        return fmap.copy()
    x = torch.from_numpy(fmap)[None, None]
    pooled = F.max_pool2d(x, p) if kind == "max" else F.avg_pool2d(x, p)
    return pooled[0, 0].numpy()


def receptive_field(i: int, j: int, k: int, p: int) -> tuple[int, int, int, int]:
    """First and last input row, first and last input column that pooled unit (i, j) sees."""
    h = k // 2
    lo = lambda a: max(0, a * p - h)
    hi = lambda a: min(SIZE - 1, a * p + p - 1 + h)
    return lo(i), hi(i), lo(j), hi(j)


def relative_change(new: np.ndarray, old: np.ndarray) -> float:
    size = float(np.linalg.norm(old))
    return float(np.linalg.norm(new - old)) / size if size > 0 else 0.0


@dataclass(frozen=True)
class Result:
    kernel_name: str
    image_name: str
    pool: str
    pool_size: int
    shift: int
    kernel: np.ndarray           # (k, k)
    original: np.ndarray         # (28, 28) the image before the shift
    image: np.ndarray            # (28, 28) the image the reader sees (shifted)
    feature: np.ndarray          # (28, 28) feature map of the shifted image
    feature_original: np.ndarray
    pooled: np.ndarray           # (28 // p, 28 // p) pooled map of the shifted image
    pooled_original: np.ndarray
    change: np.ndarray           # |pooled - pooled_original|
    unit: tuple[int, int]        # the chosen pooled unit
    unit_value: float
    field: tuple[int, int, int, int]  # rows r0..r1, columns c0..c1 (inclusive)
    change_without_pooling: float
    change_with_pooling: float


def compute(kernels=None, images=None, image_names=None, **params) -> Result:
    """Feature map, pooled map, receptive field and the effect of the shift (see the module
    docstring); ``kernels``, ``images`` and ``image_names`` replace the defaults."""
    p = validate(CONTROLS, params)
    learned = GABOR if kernels is None else _kernels(kernels)
    pictures = SHAPES if images is None else _images(images)
    names = SHAPE_NAMES if images is None else tuple(image_names or (f"image {i}" for i in range(COUNT)))
    if len(names) != COUNT:
        raise ValueError(f"image_names must name the {COUNT} images, got {len(names)} names")
    name = p["kernel"]
    if name in FIXED:
        kernel = FIXED[name]
    else:
        kernel = (RANDOM if name == "random" else learned)[p["kernel_number"]]
    size, kind, shift = p["pool_size"], p["pool"], p["shift"]
    original = pictures[p["image"]]
    image = shift_right(original, shift)
    feature, feature_original = feature_map(image, kernel), feature_map(original, kernel)
    pooled, pooled_original = pool2d(feature, kind, size), pool2d(feature_original, kind, size)
    last = pooled.shape[0] - 1
    unit = (min(p["row"] // size, last), min(p["col"] // size, last))
    kernel_label = name if name in FIXED else f"{name} {p['kernel_number']}"
    return Result(
        kernel_name=kernel_label, image_name=names[p["image"]], pool=kind, pool_size=size, shift=shift,
        kernel=kernel, original=original, image=image, feature=feature, feature_original=feature_original,
        pooled=pooled, pooled_original=pooled_original, change=np.abs(pooled - pooled_original),
        unit=unit, unit_value=float(pooled[unit]), field=receptive_field(*unit, kernel.shape[0], size),
        change_without_pooling=relative_change(feature, feature_original),
        change_with_pooling=relative_change(pooled, pooled_original),
    )


def draw(fig, r: Result) -> None:
    axes = panels(fig, 5, left=0.02, right=0.99, bottom=0.04, top=0.86, wspace=0.12)
    ax_in, ax_k, ax_f, ax_p, ax_d = axes
    ax_in.imshow(r.image, cmap="gray", vmin=0, vmax=max(1.0, float(r.image.max())))
    r0, r1, c0, c1 = r.field
    ax_in.add_patch(_rectangle(c0 - 0.5, r0 - 0.5, c1 - c0 + 1, r1 - r0 + 1))
    ax_in.set_title(f"{r.image_name}, shifted {r.shift}", fontsize=9)
    lim = float(np.abs(r.kernel).max()) or 1.0
    ax_k.imshow(r.kernel, cmap="RdBu_r", vmin=-lim, vmax=lim)
    ax_k.set_title(f"kernel: {r.kernel_name}", fontsize=9)
    lim = float(max(np.abs(r.feature).max(), np.abs(r.feature_original).max())) or 1.0
    ax_f.imshow(r.feature, cmap="RdBu_r", vmin=-lim, vmax=lim)
    ax_f.set_title("feature map", fontsize=9)
    ax_p.imshow(r.pooled, cmap="RdBu_r", vmin=-lim, vmax=lim)
    ax_p.add_patch(_rectangle(r.unit[1] - 0.5, r.unit[0] - 0.5, 1, 1))
    what = "no pooling" if r.pool_size == 1 else f"{r.pool} pool {r.pool_size}×{r.pool_size}"
    ax_p.set_title(what, fontsize=9)
    ax_d.imshow(r.change, cmap="magma", vmin=0, vmax=lim)
    ax_d.set_title(f"moved by the shift: {100 * r.change_with_pooling:.0f} %", fontsize=9)
    for ax in axes:
        ax.set_xticks([])
        ax.set_yticks([])


def _rectangle(x, y, w, h):
    from matplotlib.patches import Rectangle
    return Rectangle((x, y), w, h, fill=False, edgecolor="gold", linewidth=1.5)


def readouts(r: Result) -> dict[str, str]:
    r0, r1, c0, c1 = r.field
    pooled = "none" if r.pool_size == 1 else f"{r.pool}, {r.pool_size}×{r.pool_size}, stride {r.pool_size}"
    return {
        "image, kernel": f"{r.image_name}; {r.kernel_name} ({r.kernel.shape[0]}×{r.kernel.shape[1]})",
        "pooling": f"{pooled}: {r.feature.shape[0]}×{r.feature.shape[1]} → {r.pooled.shape[0]}×{r.pooled.shape[1]}",
        "chosen unit": f"({r.unit[0]}, {r.unit[1]}) = {r.unit_value:+.4f}",
        "its receptive field": f"rows {r0}–{r1}, columns {c0}–{c1} ({r1 - r0 + 1}×{c1 - c0 + 1} pixels)",
        f"change from a shift of {r.shift}": (f"feature map {100 * r.change_without_pooling:.1f} %, "
                                              f"pooled map {100 * r.change_with_pooling:.1f} %"),
    }


def explorer(kernels=None, images=None, image_names=None) -> Explorer:
    """The explorer with its "learned" kernels (and, optionally, its images) replaced, e.g. by
    a trained network's first-layer weights: ``explorer(kernels=model[0].weight)``."""
    if kernels is not None:
        kernels = _kernels(kernels)
    if images is not None:
        images = _images(images)
    bound = functools.partial(compute, kernels=kernels, images=images, image_names=image_names)
    functools.update_wrapper(bound, compute)
    return Explorer("W14 · Convolution and pooling", CONTROLS, bound, draw, readouts,
                    frame_control="shift", figsize=(10.5, 2.6))


EXPLORER = explorer()


def show(kernels=None, images=None, image_names=None, frame: str | None = None, **params):
    """Display the explorer: live in a notebook, static when building the book. ``kernels``,
    ``images`` and ``image_names`` replace the defaults (see ``explorer``)."""
    chosen = EXPLORER if kernels is None and images is None else explorer(kernels, images, image_names)
    return _show(chosen, frame=frame, **params)
