"""Each glossary entry's "Introduced in" link points to the first section that uses the term.

"Uses" means what the book's conventions make of a first use (DESIGN.md, the common brief):
the prose links the term with ``{term}`` (``{term}`logits``` or ``{term}`the logit <logits>```)
or names it with its Chinese name in brackets right after it ("logits (logits 值)").
Sections are the numbered chapters' pages in toc order: the intro, the Getting started page
(which runs a whole training loop before anything is taught), the explorer gallery (which
previews every chapter) and the chapter index pages are not sections that introduce terms.
Only markdown cells count, outside math.
"""
from __future__ import annotations

import functools
import json
import re
from pathlib import Path

import pytest

from toc import ROOT, toc_files

GLOSSARY = ROOT / "glossary.md"
LINK = re.compile(r"Introduced in \{doc\}`([^`]+)`")


def glossary_entries(text: str | None = None) -> list[tuple[str, str]]:
    """(term, definition) for every entry of the glossary's one ``{glossary}`` list."""
    text = GLOSSARY.read_text(encoding="utf-8") if text is None else text
    body = text.split("```{glossary}", 1)[1].split("```", 1)[0]
    return [(term.strip(), definition)
            for term, definition in re.findall(r"^(\S[^\n]*)\n((?:[ \t]+[^\n]*\n?)+)", body, re.M)]


def chinese_name(definition: str) -> str:
    """The Chinese name the definition opens with (the text before ' · ' or ' — ')."""
    return re.split(r"\s+[·—]\s+", definition.strip(), maxsplit=1)[0].strip()


def sections() -> list[str]:
    return [f for f in toc_files()
            if f.startswith("chapters/") and f != "chapters/explorers"
            and not f.endswith("/index") and not f.startswith("chapters/00_getting_started/")]


def prose(page: str) -> str:
    """The markdown of a page, math removed (a role is never inside math)."""
    path = ROOT / f"{page}.ipynb"
    if path.exists():
        cells = json.loads(path.read_text(encoding="utf-8"))["cells"]
        text = "\n\n".join("".join(c["source"]) for c in cells if c["cell_type"] == "markdown")
    elif (ROOT / f"{page}.md").exists():
        text = (ROOT / f"{page}.md").read_text(encoding="utf-8")
    else:  # a toc entry whose page is still being written
        text = ""
    return re.sub(r"\$\$.*?\$\$|\$[^$\n]*\$", " ", text, flags=re.S)


@functools.lru_cache(maxsize=None)
def _patterns(term: str, zh: str) -> tuple:
    name = re.escape(term).replace(r"\ ", r"[\s-]+")
    role = re.compile(r"\{term\}`(?:" + name + r"|[^`<]*<" + name + r">)`", re.I)
    # the term, perhaps plural, then its Chinese name in brackets: "logits (logits 值)"
    first_word = re.escape(zh.split()[0]) if zh else None
    named = first_word and re.compile(
        r"(?<![\w-])" + name + r"(?:s|es)?\**\s*[（(][^)）\n]{0,30}" + first_word, re.I)
    return role, named


def uses(term: str, zh: str, text: str) -> bool:
    role, named = _patterns(term, zh)
    return bool(role.search(text) or (named and named.search(text)))


def first_use(term: str, zh: str, texts: dict[str, str]) -> str | None:
    return next((page for page, text in texts.items() if uses(term, zh, text)), None)


def test_the_rule_on_examples():
    texts = {"a": "The softmax turns scores into probabilities.",
             "b": "Its output, the {term}`logits <logits>`, feed the softmax (softmax 函数).",
             "c": "The cross-entropy (交叉熵) is ...", "d": "{term}`cross-entropy` again"}
    assert first_use("softmax", "softmax 函数", texts) == "b"
    assert first_use("logits", "logits", texts) == "b"
    assert first_use("cross-entropy", "交叉熵", texts) == "c"
    assert first_use("entropy", "熵", texts) is None  # "cross-entropy" is not "entropy"


def test_every_entry_has_one_link():
    for term, definition in glossary_entries():
        assert len(LINK.findall(definition)) == 1, f"{term!r}: expected one 'Introduced in' link"


@pytest.fixture(scope="module")
def texts():
    return {page: prose(page) for page in sections()}


def test_introduced_in_is_the_first_section_that_uses_the_term(texts):
    wrong = []
    for term, definition in glossary_entries():
        linked = LINK.search(definition)
        first = first_use(term, chinese_name(definition), texts)
        if first is not None and linked and linked.group(1) != first:
            wrong.append(f"{term!r}: links {linked.group(1)}, first used in {first}")
    assert not wrong, f"{len(wrong)} glossary links are not the first use:\n" + "\n".join(wrong)


def test_every_term_is_used_somewhere(texts):
    unused = [term for term, definition in glossary_entries()
              if first_use(term, chinese_name(definition), texts) is None
              and (m := LINK.search(definition)) and m.group(1) in texts]
    assert not unused, f"glossary terms no section links or names bilingually: {unused}"
