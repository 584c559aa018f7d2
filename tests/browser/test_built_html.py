"""The built HTML of every toc page shows no raw MyST markup.

A role that Sphinx did not resolve is left in the page as its source text: `{term}` inside
`\\text{...}` in math is one (MathJax then typesets the braces and backticks as letters), a
role written with the wrong quotes another. The browser tests look at rendered text, where
MathJax hides such characters in CSS; this test reads the HTML itself, with code blocks and
scripts removed, so it catches them in math and in prose alike.
"""
import html
import re
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from toc import ROOT, toc_files  # noqa: E402

HTML = ROOT / "_build" / "html"
ROLE = re.compile(r"\{(term|doc|cite|cite:p|cite:t|ref|numref|eq|glossary|download|math)\}`?")
HIDDEN = re.compile(r"<(pre|code|script|style|textarea)\b.*?</\1>", re.S | re.I)


def visible_source(page: str) -> str:
    path = HTML / f"{page}.html"
    if not path.exists():
        pytest.fail(f"no built page {path}; run `make book` first (make browser does)")
    text = HIDDEN.sub(" ", path.read_text(encoding="utf-8"))
    return html.unescape(re.sub(r"<[^>]+>", " ", text))


@pytest.mark.parametrize("page", toc_files())
def test_no_raw_myst_role_on_the_page(page):
    text = visible_source(page)
    found = [text[max(0, m.start() - 40): m.end() + 40].replace("\n", " ") for m in ROLE.finditer(text)]
    assert not found, f"{page}: raw MyST role text on the page: {found[:3]}"
    stray = re.findall(r"`[^`\s][^`]{0,60}`", text)  # a role's backticks that reached the reader
    assert not stray, f"{page}: raw backtick markup on the page: {stray[:3]}"
