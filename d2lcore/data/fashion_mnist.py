"""FashionMNIST (Xiao, Rasul and Vollgraf, 2017): found, verified and held in memory as uint8.

Where the four files are looked for, in order:

1. the folder passed as ``root=``, 2. the folder in ``$D2LCORE_DATA``,
3. the user cache (``$XDG_CACHE_HOME/d2lcore/fashion-mnist``, default ``~/.cache/...``),
4. the Debian/Ubuntu package ``dataset-fashion-mnist`` (``/usr/share/datasets/fashion-mnist``);

if none has them, they are downloaded from the public mirror into the cache (or into the folder
you named). Every file is checked by the SHA-256 of its *decompressed* bytes, because
distributors gzip the same data differently. A damaged file in the cache is reported, removed
and replaced; a folder you named that holds wrong files is an error, never modified.
"""
from __future__ import annotations

import contextlib
import hashlib
import http.client
import os
import shutil
import sys
import tempfile
import urllib.request
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import torch

from d2lcore.data.batches import Batches
from d2lcore.data.idx import IDXError, parse_idx, read_bytes
from d2lcore.files import fsync_dir

STEMS = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")
# SHA-256 of the decompressed files. Tests swap in the checksums of tiny fake files.
SHA256 = {
    "train-images-idx3-ubyte": "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888",
    "train-labels-idx1-ubyte": "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9",
    "t10k-images-idx3-ubyte": "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b",
    "t10k-labels-idx1-ubyte": "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34",
}
MIRROR = "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/"
DEBIAN_DIR = Path("/usr/share/datasets/fashion-mnist")
ENV_VAR = "D2LCORE_DATA"
TIMEOUT_S = 60  # per network operation, so a dead connection fails instead of hanging a notebook


class DataError(RuntimeError):
    """A folder you named holds the wrong FashionMNIST files, or the data cannot be provided."""


class DatasetNotFoundError(DataError):
    """No valid copy anywhere, and downloading one failed or was not allowed."""


class DataWarning(UserWarning):
    """A damaged copy was found and skipped (and, in the cache, removed)."""


@dataclass(frozen=True)
class Source:
    """Where the files were found: ``folder``, ``how`` ("explicit", "env", "cache", "debian" or
    "download"), a human ``description`` of that, and the path of each file."""

    folder: Path
    how: str
    description: str
    files: dict[str, Path] = field(repr=False)

    def __str__(self) -> str:
        return f"{self.folder} ({self.description})"


def cache_dir() -> Path:
    """The user cache folder for FashionMNIST (XDG convention)."""
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "d2lcore" / "fashion-mnist"


# --- verification -------------------------------------------------------------------------

_verified: dict[tuple, str] = {}  # (path, mtime, size) -> checksum: each file is hashed once per process


def _identity(path: Path) -> tuple:
    st = path.stat()
    return str(path.resolve()), st.st_mtime_ns, st.st_size


def _check(path: Path, stem: str, fresh: dict[str, bytes]) -> str | None:
    """None if ``path`` holds ``stem``, else what is wrong with it. Payloads read here are put in
    ``fresh`` so that loading does not decompress them a second time."""
    key = _identity(path)
    if _verified.get(key) == SHA256[stem]:
        return None
    try:
        payload = read_bytes(path)
    except IDXError as err:
        return str(err)
    except OSError as err:
        return f"{path}: cannot be read ({err})"
    digest = hashlib.sha256(payload).hexdigest()
    if digest != SHA256[stem]:
        try:  # say *why* it differs when the format tells us (truncated, not IDX at all)
            shape = tuple(parse_idx(payload, str(path)).shape)
        except IDXError as err:
            return str(err)
        return (f"{path}: an IDX file of shape {shape}, but not {stem}: the SHA-256 of its contents "
                f"is {digest[:16]}..., expected {SHA256[stem][:16]}...")
    _verified[key] = digest
    fresh[stem] = payload
    return None


def _scan(folder: Path, fresh: dict[str, bytes]) -> tuple[dict[str, Path], list[tuple[str, Path, str]]]:
    """The valid file of each stem in ``folder`` (plain or .gz), and (stem, path, problem) of
    the invalid ones."""
    good, bad = {}, []
    for stem in STEMS:
        for path in (folder / stem, folder / f"{stem}.gz"):
            if not path.is_file():
                continue
            problem = _check(path, stem, fresh)
            if problem is None:
                good[stem] = path
                break
            bad.append((stem, path, problem))
    return good, bad


# --- download -----------------------------------------------------------------------------

class _DownloadFailed(Exception):
    pass


def _download(stem: str, folder: Path, mirror: str, fresh: dict[str, bytes]) -> Path:
    """Fetch ``stem``.gz into ``folder`` atomically: a temporary file in the same folder is
    written, fsynced and verified, then renamed into place, so no partial file is ever seen."""
    url = f"{mirror.rstrip('/')}/{stem}.gz"
    target = folder / f"{stem}.gz"
    try:
        folder.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(dir=folder, prefix=f".{stem}.", suffix=".part")
    except OSError as err:
        raise _DownloadFailed(f"cannot write to {folder} ({err})") from err
    tmp = Path(name)
    print(f"Downloading {url} to {folder}", file=sys.stderr)
    try:
        with os.fdopen(fd, "wb") as out:
            with urllib.request.urlopen(url, timeout=TIMEOUT_S) as response:
                shutil.copyfileobj(response, out, 1 << 20)
            out.flush()
            os.fsync(out.fileno())
        problem = _check(tmp, stem, fresh)
        if problem is not None:
            raise _DownloadFailed(f"the file from {url} is not the expected one: {problem}")
        os.replace(tmp, target)
        _verified[_identity(target)] = SHA256[stem]  # a rename keeps size and mtime
        fsync_dir(folder)
        return target
    except (OSError, ValueError, http.client.HTTPException) as err:  # URLError is an OSError
        raise _DownloadFailed(f"{url}: {err}") from err
    finally:
        tmp.unlink(missing_ok=True)  # only still there if something failed


# --- resolution ---------------------------------------------------------------------------

def _three_ways(problem: str) -> str:
    return (f"{problem}\nFashionMNIST can be provided in three ways:\n"
            f"  1. install the Debian/Ubuntu package: sudo apt-get install dataset-fashion-mnist\n"
            f"  2. put the four files ({', '.join(STEMS)}; gzipped or not) in a folder, and set "
            f"${ENV_VAR} to it or pass root=<folder>\n"
            f"  3. connect to the network and run this again: the files are downloaded to {cache_dir()}")


def _named_folder(folder: Path, how: str, download: bool, mirror: str, fresh: dict) -> Source:
    """A folder the user named: it must hold the right files. Wrong files are an error (and left
    alone); missing ones are downloaded into it."""
    given_by = "root=" if how == "explicit" else f"${ENV_VAR}"
    instead = "leave out root=" if how == "explicit" else f"unset ${ENV_VAR}"
    if folder.exists() and not folder.is_dir():
        raise DataError(f"{folder} (from {given_by}) is a file, not a folder; name a folder, or {instead} "
                        f"to use the user cache or the Debian package.")
    good, bad = _scan(folder, fresh)
    wrong = [problem for stem, _, problem in bad if stem not in good]
    missing = [stem for stem in STEMS if stem not in good and stem not in {s for s, _, _ in bad}]
    if wrong:
        also = f"\nand it lacks {', '.join(missing)}." if missing else ""
        raise DataError(
            f"The folder {folder} (from {given_by}) holds files that are not the FashionMNIST files:\n  "
            + "\n  ".join(wrong) + also
            + f"\nReplace them with the original files, delete them so they are downloaded again, "
            f"or {instead} to use the user cache or the Debian package.")
    if not missing:
        return Source(folder, how, f"from {given_by}", good)
    lack = f"The folder {folder} (from {given_by}) lacks {', '.join(missing)} (plain or .gz)"
    if not download:
        raise DatasetNotFoundError(_three_ways(f"{lack}, and download=False."))
    new_folders = [p for p in (folder, *folder.parents) if not p.exists()]  # deepest first
    try:
        for stem in missing:
            good[stem] = _download(stem, folder, mirror, fresh)
    except _DownloadFailed as err:
        for created in new_folders:  # a mistyped root= must not be left behind, created and empty
            with contextlib.suppress(OSError):
                created.rmdir()
        raise DatasetNotFoundError(_three_ways(f"{lack}, and downloading into it failed: {err}")) from err
    return Source(folder, "download", f"downloaded from {mirror} into the folder from {given_by}", good)


def _default_places(download: bool, mirror: str, fresh: dict) -> Source:
    """The user cache, then the Debian package, then a download into the cache."""
    cache = cache_dir()
    good, bad = _scan(cache, fresh)
    for _, path, problem in bad:  # never use a damaged cached file, and never keep it
        warnings.warn(f"FashionMNIST: removing a damaged file from the cache: {problem}. "
                      f"A verified copy is used instead.", DataWarning, stacklevel=4)
        path.unlink(missing_ok=True)
    if len(good) == len(STEMS):
        return Source(cache, "cache", "user cache", good)
    debian, damaged = _scan(DEBIAN_DIR, fresh)
    if len(debian) == len(STEMS):
        return Source(DEBIAN_DIR, "debian", "Debian/Ubuntu package dataset-fashion-mnist", debian)
    for _, _, problem in damaged:
        warnings.warn(f"FashionMNIST: the Debian package copy is damaged and not used: {problem}. "
                      f"Reinstall it: sudo apt-get install --reinstall dataset-fashion-mnist",
                      DataWarning, stacklevel=4)
    missing = [stem for stem in STEMS if stem not in good]
    nowhere = f"FashionMNIST is neither in the user cache ({cache}) nor in {DEBIAN_DIR}"
    if not download:
        raise DatasetNotFoundError(_three_ways(f"{nowhere}, and download=False."))
    try:
        for stem in missing:
            good[stem] = _download(stem, cache, mirror, fresh)
    except _DownloadFailed as err:
        raise DatasetNotFoundError(_three_ways(f"{nowhere}, and downloading it failed: {err}")) from err
    return Source(cache, "download", f"downloaded from {mirror} into the user cache", good)


def find(root: str | os.PathLike | None = None, download: bool = True, mirror: str | None = None,
         fresh: dict[str, bytes] | None = None) -> Source:
    """Find (or download) verified FashionMNIST files and say where they are."""
    fresh = {} if fresh is None else fresh
    mirror = MIRROR if mirror is None else mirror
    if root is not None:
        return _named_folder(Path(root).expanduser(), "explicit", download, mirror, fresh)
    if os.environ.get(ENV_VAR):
        return _named_folder(Path(os.environ[ENV_VAR]).expanduser(), "env", download, mirror, fresh)
    return _default_places(download, mirror, fresh)


# --- loading ------------------------------------------------------------------------------

_loaded: dict[tuple, dict[str, torch.Tensor]] = {}  # one parsed copy per process, keyed by the files


def _load(source: Source, fresh: dict[str, bytes]) -> dict[str, torch.Tensor]:
    key = tuple(_identity(source.files[stem]) for stem in STEMS)
    if key not in _loaded:
        t = {stem: parse_idx(fresh[stem] if stem in fresh else read_bytes(path), str(path))
             for stem, path in source.files.items()}
        for images, labels in (("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
                               ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")):
            if t[images].ndim != 3 or t[labels].ndim != 1 or len(t[images]) != len(t[labels]):
                raise DataError(f"{source.folder}: {images} has shape {tuple(t[images].shape)} and {labels} "
                                f"{tuple(t[labels].shape)}; expected (N, H, W) images and N labels")
            t[labels] = t[labels].long()
        _loaded.clear()  # keep one copy in memory, not one per folder ever used
        _loaded[key] = t
    return _loaded[key]


def _unit_floats(x: torch.Tensor) -> torch.Tensor:
    # uint8 / 255 converts and scales in one pass (several times faster on a CPU than
    # .float() then a division); it gives the default float type, so insist on float32.
    y = x / 255
    return y if y.dtype == torch.float32 else y.float()


def _unit_images(x: torch.Tensor) -> torch.Tensor:
    return _unit_floats(x.unsqueeze(1))


def _unit_vectors(x: torch.Tensor) -> torch.Tensor:
    return _unit_floats(x.reshape(len(x), -1))


class FashionMNIST:
    """The 70,000 FashionMNIST images as in-memory tensors, in four splits.

    ``split(name)`` and ``loader(name, ...)`` know:

    - ``"train"``: 50,000 of the 60,000 training images, for fitting;
    - ``"val"``: the other 10,000 (1,000 per class), for every choice a chapter makes;
    - ``"test"``: the 10,000 test images, reported once at the end of a section;
    - ``"train+val"``: all 60,000 training images, for a final fit once the choices are made.

    The validation images are drawn per class by a fixed rule (``validation_indices``): a
    permutation of each class's images from a generator seeded with ``SPLIT_SEED``, the first
    sixth of it; so the split is the same on every machine and every class keeps its share.

    ``train_images`` / ``test_images`` are the files' uint8 tensors, (60000, 28, 28) and
    (10000, 28, 28), with int64 ``train_labels`` / ``test_labels``. They are shared by every
    instance loaded from the same files (loading twice costs nothing), so do not modify them in
    place. ``source`` says where the files were found.

    ``root``: a folder to use instead of the default places; ``download=False`` forbids the
    network; ``mirror``: the URL the four ``.gz`` files are downloaded from.
    """

    CLASSES = ("t-shirt", "trouser", "pullover", "dress", "coat",
               "sandal", "shirt", "sneaker", "bag", "ankle boot")
    SPLITS = ("train", "val", "test", "train+val")

    def __init__(self, root: str | os.PathLike | None = None, download: bool = True, mirror: str | None = None):
        fresh: dict[str, bytes] = {}
        self.source = find(root, download, mirror, fresh)
        tensors = _load(self.source, fresh)
        self.train_images = tensors["train-images-idx3-ubyte"]
        self.train_labels = tensors["train-labels-idx1-ubyte"]
        self.test_images = tensors["t10k-images-idx3-ubyte"]
        self.test_labels = tensors["t10k-labels-idx1-ubyte"]
        self._val_index = validation_indices(self.train_labels)
        keep = torch.ones(len(self.train_labels), dtype=torch.bool)
        keep[self._val_index] = False
        self._train_index = keep.nonzero().flatten()  # computed once: split() is called often
        self._on_device: dict[tuple, tuple[torch.Tensor, torch.Tensor]] = {}

    @classmethod
    def text_labels(cls, indices) -> list[str]:
        """The class names of integer labels (a tensor, a sequence of ints, or one int)."""
        values = torch.as_tensor(indices)
        if values.is_floating_point() or values.is_complex() or values.dtype == torch.bool:
            raise TypeError(f"labels must be integers, got a tensor of {values.dtype}")
        values = values.flatten().tolist()
        bad = [v for v in values if not 0 <= v < len(cls.CLASSES)]
        if bad:
            raise ValueError(f"labels must be in 0..{len(cls.CLASSES) - 1}; got {bad[:5]}"
                             f"{' ...' if len(bad) > 5 else ''}")
        return [cls.CLASSES[v] for v in values]

    def split(self, name: str) -> tuple[torch.Tensor, torch.Tensor]:
        """``(images, labels)`` of a split: uint8 images (N, 28, 28), int64 labels (N,)."""
        if name not in self.SPLITS:
            raise ValueError(f"unknown split {name!r}; FashionMNIST has {self.SPLITS}")
        if name == "test":
            return self.test_images, self.test_labels
        if name == "train+val":
            return self.train_images, self.train_labels
        index = self._val_index if name == "val" else self._train_index
        return self.train_images[index], self.train_labels[index]

    def loader(self, split: str, batch_size: int, shuffle: bool | None = None,
               device: torch.device | str | None = None, seed: int = 0, flatten: bool = False) -> Batches:
        """Minibatches ``(X, y)`` of ``split``: float32 images in [0, 1] of shape (B, 1, 28, 28),
        or (B, 784) with ``flatten=True``, and int64 labels; shuffled by default for "train" and
        "train+val" only. See the class docstring for the four splits.

        The images are converted to float once per split and device (default: the CPU) and kept
        there (157 MB for the 50,000 training images), so a batch costs one row gather and nothing else:
        converting 235 uint8 batches every epoch costs more than the gather itself.

        Make the loader once and iterate it every epoch: each pass draws a new permutation. A new
        loader with the same ``seed`` starts the same sequence of permutations again, so its first
        epoch repeats the first epoch of the old one.
        """
        if split not in self.SPLITS:
            raise ValueError(f"unknown split {split!r}; FashionMNIST has {self.SPLITS}")
        device = torch.device(device) if device is not None else self.train_images.device
        key = (split, str(device), flatten)
        if key not in self._on_device:
            images, labels = self.split(split)
            moved = images.to(device)
            self._on_device[key] = (_unit_vectors(moved) if flatten else _unit_images(moved), labels.to(device))
        images, labels = self._on_device[key]
        return Batches(images, labels, batch_size=batch_size,
                       shuffle=split in ("train", "train+val") if shuffle is None else shuffle, seed=seed,
                       device=device)

    def __repr__(self) -> str:
        h, w = self.train_images.shape[1:]
        n_val = len(self._val_index)
        return (f"FashionMNIST(train: {len(self.train_labels) - n_val} images, val: {n_val}, "
                f"test: {len(self.test_labels)}, "
                f"{h}x{w} uint8, {len(self.CLASSES)} classes; from {self.source})")


SPLIT_SEED = 20170825  # the day FashionMNIST was released; any fixed number would do
VAL_FRACTION = 1 / 6  # 10,000 of the 60,000 training images, 1,000 per class


def validation_indices(labels: torch.Tensor, seed: int = SPLIT_SEED) -> torch.Tensor:
    """Sorted indices of the validation images: a seeded random sixth of each class.

    Drawn on the CPU from a private generator, so the split is identical everywhere and no
    global random state is touched. With FashionMNIST's 6,000 images per class this is 1,000 per
    class, 10,000 in all.
    """
    g = torch.Generator().manual_seed(seed)
    chosen = []
    for c in range(int(labels.max()) + 1 if len(labels) else 0):
        members = (labels == c).nonzero().flatten()
        take = round(len(members) * VAL_FRACTION)
        chosen.append(members[torch.randperm(len(members), generator=g)[:take]])
    return torch.cat(chosen).sort().values if chosen else labels.new_zeros(0)


def image_grid(images: torch.Tensor, ncols: int = 8, pad: int = 2, pad_value: float = 1.0) -> torch.Tensor:
    """Tile N images, (N, H, W) or (N, 1, H, W), into one 2-D float tensor in [0, 1] to plot.

    uint8 images are divided by 255; float images must already lie in [0, 1]. Images fill rows
    of ``ncols``, separated by ``pad`` pixels of ``pad_value`` (white by default).
    """
    images = torch.as_tensor(images).detach()
    if images.ndim == 4 and images.shape[1] == 1:
        images = images[:, 0]
    if images.ndim != 3 or images.numel() == 0:
        raise ValueError(f"image_grid expects a non-empty (N, H, W) or (N, 1, H, W) tensor; "
                         f"got shape {tuple(images.shape)}")
    if not (isinstance(ncols, int) and ncols >= 1 and isinstance(pad, int) and pad >= 0):
        raise ValueError(f"ncols must be an integer >= 1 and pad an integer >= 0; got ncols={ncols!r}, pad={pad!r}")
    if images.dtype == torch.uint8:
        images = images.float() / 255
    elif images.is_floating_point():
        images = images.float()
        lo, hi = images.min().item(), images.max().item()
        if not 0 <= lo <= hi <= 1:  # also catches NaN
            raise ValueError(f"float images must lie in [0, 1], these range over [{lo}, {hi}]; "
                             f"rescale first, e.g. (x - x.min()) / (x.max() - x.min())")
    else:
        raise TypeError(f"image_grid takes uint8 or float images, got {images.dtype}")
    n, h, w = images.shape
    ncols = min(ncols, n)
    nrows = -(-n // ncols)
    # Each cell is an image with `pad` pixels above and to its left; one more strip closes the grid.
    cells = images.new_full((nrows * ncols, h + pad, w + pad), pad_value)
    cells[:n, pad:, pad:] = images
    rows = cells.reshape(nrows, ncols, h + pad, w + pad).permute(0, 2, 1, 3)  # (row, y, column, x)
    grid = rows.reshape(nrows * (h + pad), ncols * (w + pad))
    return torch.nn.functional.pad(grid, (0, pad, 0, pad), value=pad_value)
