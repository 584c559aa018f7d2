"""Every notebook of the toc has the shape DESIGN.md §5 asks for (tools/notebooks.py checks
and repairs it), and its code fits the book's column."""
import ast
import copy
import sys
from pathlib import Path

import pytest
from IPython.core.inputtransformer2 import TransformerManager

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tools"))
import notebooks  # noqa: E402

NOTEBOOKS = notebooks.toc_notebooks()
IDS = [str(p.relative_to(ROOT / "chapters")) for p in NOTEBOOKS]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=IDS)
def test_notebook_has_the_install_cell_ids_and_collapsed_claim_checks(path):
    found = notebooks.problems(notebooks.load(path))
    assert not found, f"{path.relative_to(ROOT)}: {'; '.join(found)}; " \
                      "run `python tools/notebooks.py --fix`"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=IDS)
def test_code_lines_fit_the_book_column(path):
    found = notebooks.long_lines(notebooks.load(path))
    assert not found, f"{path.relative_to(ROOT)}: code lines over {notebooks.MAX_LINE} " \
                      "characters are clipped in the book:\n  " + "\n  ".join(found)


def test_install_cell_is_python_to_ipython_and_pinned_to_this_release():
    url, version = notebooks.repository()
    source = notebooks.install_source()
    ast.parse(TransformerManager().transform_cell(source))  # %pip inside the except block
    assert f'"d2lcore @ git+{url}@v{version}"' in source
    assert max(map(len, source.splitlines())) <= notebooks.MAX_LINE


def test_fix_repairs_a_damaged_notebook_keeps_its_ids_and_is_idempotent():
    good = notebooks.fixed(notebooks.load(ROOT / "chapters" / "explorers.ipynb"))
    assert notebooks.problems(good) == []
    damaged = copy.deepcopy(good)
    damaged.nbformat_minor = 4
    damaged.cells = [c for c in damaged.cells if c.get("id") != notebooks.INSTALL_TAG]
    check = next(c for c in damaged.cells if "remove-cell" in notebooks.tags(c))
    check.metadata.pop("jupyter")
    check.metadata["keep"] = 1
    del damaged.cells[0]["id"]
    found = notebooks.problems(damaged)
    assert len(found) == 5, found  # nbformat, ids, install cell (so set-up is not 2nd), collapse

    repaired = notebooks.fixed(damaged)
    assert notebooks.problems(repaired) == []
    assert notebooks.dump(notebooks.fixed(repaired)) == notebooks.dump(repaired)
    assert [c.id for c in repaired.cells[1:]] == [c.id for c in good.cells[1:]]  # kept
    assert repaired.cells[0].id == notebooks.fixed(damaged).cells[0].id  # derived, not random
    assert next(c for c in repaired.cells if c.id == check.id).metadata["keep"] == 1


def test_second_code_cell_must_be_the_set_up_cell():
    nb = notebooks.fixed(notebooks.load(ROOT / "chapters" / "explorers.ipynb"))
    setup = notebooks.code_cells(nb)[1]
    setup.metadata["tags"] = []
    assert any("second code cell" in p for p in notebooks.problems(nb))
