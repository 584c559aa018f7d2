"""Explorer catalogue IDs (W1 ... W19) never reach the reader of the built book.

The IDs are the design documents' bookkeeping (../shared/WIDGETS.md); on the page an explorer
is named ("the softmax explorer"). This test reads each toc page of ``_build/html`` the way
test_built_html.py does, with code blocks, scripts and typeset math removed, and also looks
at the text the static explorer copies show (their heading and the image's alt text), since
the explorer's title comes from its module.
"""
import html
import re
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from toc import ROOT, toc_files  # noqa: E402

HTML = ROOT / "_build" / "html"
HIDDEN = re.compile(r"<(pre|code|script|style|textarea)\b.*?</\1>", re.S | re.I)
MATH = re.compile(r"\\\(.*?\\\)|\\\[.*?\\\]|\$\$.*?\$\$", re.S)
ALT = re.compile(r'\balt="([^"]*)"')
# "W4 · Softmax", "(W7)", "explorer W6": W followed by a catalogue number, as a whole word
EXPLORER_ID = re.compile(r"(?<![\w$\\_^])W(1[0-9]|[1-9])(?![\w_^])")


def reader_text(source: str) -> str:
    """What a reader sees of a page's HTML: prose, headings, alt texts; no code, no math."""
    alts = " ".join(ALT.findall(source))
    text = HIDDEN.sub(" ", source)
    text = html.unescape(re.sub(r"<[^>]+>", " ", text))
    return MATH.sub(" ", text + " " + html.unescape(alts))


def explorer_ids(source: str) -> list[str]:
    text = reader_text(source)
    return [text[max(0, m.start() - 30): m.end() + 30].replace("\n", " ") for m in EXPLORER_ID.finditer(text)]


def test_the_pattern_finds_ids_and_leaves_math_and_code_alone():
    assert explorer_ids("<h2>W4 · Softmax builds a categorical distribution</h2>")
    assert explorer_ids("<p>The dice information lab (W7) shows</p>")
    assert explorer_ids('<img alt="W12 · Outliers" src="x.png">')
    assert not explorer_ids(r"<p>the weights \(W_1\) and \(\mathbf{W}_2\)</p>")
    assert not explorer_ids("<pre>W1 = torch.randn(h, d)</pre><p>W₁ and WW1</p>")


def test_the_static_explorer_copy_shows_no_id():
    from d2lcore.explore import softmax_categorical
    from d2lcore.explore.toolkit import static_html
    explorer = softmax_categorical.EXPLORER
    assert explorer.catalogue_id == "W4"  # the ID is kept for the tests and the gallery
    static = static_html(explorer, explorer.frame_control)
    assert not explorer_ids(static), explorer_ids(static)[:3]


@pytest.mark.parametrize("page", toc_files())
def test_no_explorer_id_on_the_page(page):
    path = HTML / f"{page}.html"
    if not path.exists():
        pytest.fail(f"no built page {path}; run `make book` first (make browser does)")
    found = explorer_ids(path.read_text(encoding="utf-8"))
    assert not found, f"{page}: explorer catalogue IDs on the page: {found[:3]}"
