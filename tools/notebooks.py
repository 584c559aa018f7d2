"""Keep every notebook of the book in the shape DESIGN.md §5 asks for.

    python tools/notebooks.py --check [NOTEBOOK ...]   list what is out of shape (exit 1 if so)
    python tools/notebooks.py --fix [NOTEBOOK ...]     repair what can be repaired, in place

Without NOTEBOOK arguments, every notebook of the table of contents.

What is checked, and what --fix does about it:

- the first code cell installs d2lcore when it is missing (Colab) and does nothing elsewhere;
  --fix writes it from pyproject.toml (version and [project.urls] Repository), so a release
  only has to run --fix;
- the second code cell is the hide-cell set-up cell that calls d2lcore.setup (reported only);
- nbformat 4.5 with unique cell ids; --fix keeps existing ids and derives missing ones from
  the cell's position and source, so running it twice gives the same file;
- claim checks (tag remove-cell) are collapsed in JupyterLab; --fix adds the metadata, and
  starts each with a comment line, since JupyterLab's folded placeholder shows a cell's first
  line: a first line of code would show the answer it checks.

Notebooks are read as plain JSON (nbformat's reader would invent random ids for cells lacking
them) and written with nbformat, indent 1, as they are stored, so a fix is a small diff.
"""
from __future__ import annotations

import copy
import hashlib
import json
import sys
import tomllib
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
from toc import toc_notebooks  # noqa: E402  (the toc is read in one place)

INSTALL_TAG = "colab-install"
# The book runs the cell (so each build shows it does nothing where d2lcore is installed) but
# renders nothing of it: with both tags MyST-NB drops the cell, where remove-input alone would
# leave an empty box and hide-cell a second "show code" toggle a reader of the HTML cannot use.
# Not remove-cell, which marks claim checks. Colab and JupyterLab show it: a reader sees what
# it installs.
INSTALL_TAGS = [INSTALL_TAG, "remove-input", "remove-output"]
COLLAPSED = {"source_hidden": True, "outputs_hidden": True}
MAX_LINE = 88  # the book's code column; longer lines are clipped
CLAIM_HEADER = "# Claim check: asserts what the text above states (hidden in the book)."

INSTALL_SOURCE = '''\
# Colab, or a Jupyter without d2lcore: install the d2lcore this book was built with.
# Where d2lcore is installed already (the book, Binder, `make`), this cell does nothing.
try:
    import d2lcore
except ImportError:
    import importlib
    import os
    import sys
    _source = os.environ.get("D2LCORE_INSTALL_FROM") or (  # a local checkout, for tests
        "d2lcore @ git+{url}@v{version}")
    # Colab has d2lcore's other dependencies, and its page draws ipywidgets 7 widgets
    # only: --no-deps keeps its own ipywidgets rather than upgrading it to 8.
    _deps = "--no-deps" if "google.colab" in sys.modules else ""
    %pip install -q {{_deps}} "{{_source}}"
    importlib.invalidate_caches()  # see the package that was just installed
    import d2lcore'''


def repository() -> tuple[str, str]:
    """The repository URL and the package version, from pyproject.toml (their one home)."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    return project["urls"]["Repository"], project["version"]


def install_source() -> str:
    url, version = repository()
    return INSTALL_SOURCE.format(url=url, version=version)


def load(path: Path) -> nbformat.NotebookNode:
    return nbformat.from_dict(json.loads(path.read_text()))


def dump(nb: nbformat.NotebookNode) -> str:
    return nbformat.writes(nb) + "\n"


def tags(cell) -> list[str]:
    return cell.get("metadata", {}).get("tags", [])


def code_cells(nb) -> list:
    return [c for c in nb.cells if c.cell_type == "code"]


def fixed(nb: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """A copy of nb with the install cell, nbformat 4.5 ids and collapsed claim checks."""
    nb = copy.deepcopy(nb)
    install = [c for c in nb.cells if INSTALL_TAG in tags(c)]
    for cell in install:
        nb.cells.remove(cell)
    cell = nbformat.v4.new_code_cell(install_source())
    cell.id = INSTALL_TAG
    old = install[0].metadata if install else {}  # keep what else a person put there
    cell.metadata = {**old, "tags": INSTALL_TAGS + [t for t in old.get("tags", [])
                                                    if t not in INSTALL_TAGS]}
    first = next((i for i, c in enumerate(nb.cells) if c.cell_type == "code"), len(nb.cells))
    nb.cells.insert(first, cell)

    nb.nbformat, nb.nbformat_minor = 4, max(5, nb.get("nbformat_minor", 0))
    taken = {c.get("id") for c in nb.cells}
    for i, c in enumerate(nb.cells):
        if not c.get("id"):
            digest = hashlib.sha1(f"{i}\n{''.join(c.source)}".encode()).hexdigest()
            c.id = next(f"cell-{digest[k:k + 8]}" for k in range(0, 33)
                        if f"cell-{digest[k:k + 8]}" not in taken)
            taken.add(c.id)

    for c in nb.cells:
        if "remove-cell" in tags(c):
            c.metadata["jupyter"] = {**c.metadata.get("jupyter", {}), **COLLAPSED}
            if c.cell_type == "code" and not _starts_with_comment(c):
                c.source = CLAIM_HEADER + "\n" + "".join(c.source)
    return nb


def _starts_with_comment(cell) -> bool:
    return "".join(cell.source).lstrip().startswith("#")


def problems(nb: nbformat.NotebookNode) -> list[str]:
    """What is out of shape, one line each; empty when nothing is."""
    found = []
    if (nb.get("nbformat"), nb.get("nbformat_minor", 0)) < (4, 5):
        found.append(f"nbformat {nb.get('nbformat')}.{nb.get('nbformat_minor')}, not 4.5")
    ids = [c.get("id") for c in nb.cells]
    if not all(ids) or len(set(ids)) != len(ids):
        found.append("cells without an id, or with the same id")
    code = code_cells(nb)
    if not code or INSTALL_TAG not in tags(code[0]):
        found.append(f"the first code cell is not the Colab install cell (tag {INSTALL_TAG})")
    elif "".join(code[0].source) != install_source() or tags(code[0])[:len(INSTALL_TAGS)] != INSTALL_TAGS:
        found.append("the Colab install cell is not the one --fix writes from pyproject.toml")
    if sum(INSTALL_TAG in tags(c) for c in nb.cells) > 1:
        found.append("more than one Colab install cell")
    if len(code) < 2 or "hide-cell" not in tags(code[1]) \
            or "d2lcore.setup(" not in "".join(code[1].source):
        found.append("the second code cell is not the hide-cell set-up calling d2lcore.setup")
    open_checks = [c.get("id") or i for i, c in enumerate(nb.cells) if "remove-cell" in tags(c)
                   and any(c.metadata.get("jupyter", {}).get(k) is not True for k in COLLAPSED)]
    if open_checks:
        found.append(f"claim checks (remove-cell) not collapsed in JupyterLab: {open_checks}")
    showing = [c.get("id") or i for i, c in enumerate(nb.cells) if "remove-cell" in tags(c)
               and c.cell_type == "code" and not _starts_with_comment(c)]
    if showing:
        found.append(f"claim checks whose first line (shown when folded) is code: {showing}")
    return found


def long_lines(nb: nbformat.NotebookNode, limit: int = MAX_LINE) -> list[str]:
    """Code lines longer than the book's column: cell number (from 0) and id, line, length."""
    return [f"cell {i} (id {c.get('id')}), line {n}: {len(line)} chars"
            for i, c in enumerate(nb.cells) if c.cell_type == "code"
            for n, line in enumerate("".join(c.source).splitlines(), 1) if len(line) > limit]


def main(argv: list[str]) -> int:
    if not argv or argv[0] not in ("--check", "--fix"):
        print(__doc__)
        return 2
    mode, named = argv[0], [Path(a).resolve() for a in argv[1:]]
    bad = 0
    for path in named or toc_notebooks():
        rel = path.relative_to(ROOT)
        if mode == "--fix":  # one quick read-modify-write per file: others edit these too
            text = path.read_text()
            new = dump(fixed(load(path)))
            if new != text:
                path.write_text(new)
                print(f"fixed {rel}")
        for problem in problems(load(path)):
            print(f"{rel}: {problem}")
            bad += 1
    if mode == "--check" and bad:
        print("run: python tools/notebooks.py --fix")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
