"""One Chinese name per term across the book.

Wherever a page gives a glossary term with a Chinese name in brackets, "logits (...)" or
"{term}`the logits <logits>` (...)", the Chinese is the glossary's name for that term. A
longer English phrase may add a Chinese prefix ("minibatch stochastic gradient descent
(小批量随机梯度下降)" ends with 随机梯度下降), nothing else. Names the expert reading found
wrong are banned outright, in the glossary and on every page.
"""
from __future__ import annotations

import functools
import json
import re

import pytest

from test_glossary_links import chinese_name, glossary_entries
from toc import ROOT

CJK = re.compile(r"[\u3400-\u9fff]")
# wrong names found by the expert reading of chapters 0-3, and what replaced them
BANNED = {
    "插件估计": "plug-in estimate is 代入估计 (插件 is a software plug-in)",
    "对数求和指数": "log-sum-exp is 对数和指数",
    "对数几率": "对数几率 means log-odds, not logits",
    "未归一化的得分": "logits are 未规范化的对数概率",
}


def pages() -> list:
    found = sorted((ROOT / "chapters").rglob("*.ipynb")) + sorted((ROOT / "chapters").rglob("*.md"))
    return [p for p in found + [ROOT / "intro.md", ROOT / "glossary.md"] if ".ipynb_checkpoints" not in p.parts]


def markdown(path) -> str:
    if path.suffix == ".md":
        return path.read_text(encoding="utf-8")
    cells = json.loads(path.read_text(encoding="utf-8"))["cells"]
    return "\n\n".join("".join(c["source"]) for c in cells if c["cell_type"] == "markdown")


def names_given(term: str, text: str) -> list[str]:
    """Every Chinese name the text puts in brackets right after the term."""
    name = re.escape(term).replace(r"\ ", r"[\s-]+")
    plain = r"(?<![\w-])" + name + r"(?:s|es)?\**"
    role = r"\{term\}`(?:" + name + r"|[^`<]*<" + name + r">)`"
    out = []
    for m in re.finditer(r"(?:" + role + "|" + plain + r")\s*[（(]([^()（）\n]{1,60})[)）]", text, re.I):
        out += [part.strip() for part in re.split(r"[,;，；]", m.group(1)) if CJK.search(part)][:1]
    return out


@functools.lru_cache(maxsize=1)
def glossary_names() -> dict[str, str]:
    return {term: chinese_name(definition) for term, definition in glossary_entries()}


def test_the_rule_on_examples():
    text = "the logits (对数几率) and {term}`logits <logits>` (未规范化的对数概率), MAP (最大后验估计, MAP)"
    assert names_given("logits", text) == ["对数几率", "未规范化的对数概率"]
    assert names_given("maximum a posteriori estimation", text) == []
    assert names_given("MAP", text) == ["最大后验估计"]


def test_each_glossary_term_has_one_chinese_name():
    names = glossary_names()
    assert all(CJK.search(zh) or zh.isascii() for zh in names.values())
    twice = {}
    for term, zh in names.items():
        twice.setdefault(zh, []).append(term)
    shared = {zh: terms for zh, terms in twice.items() if len(terms) > 1}
    assert not shared, f"one Chinese name for several glossary terms: {shared}"


@pytest.mark.parametrize("path", pages(), ids=lambda p: str(p.relative_to(ROOT)))
def test_the_page_uses_the_glossary_names(path):
    text = markdown(path)
    names = glossary_names()
    terms = sorted(names, key=len, reverse=True)
    wrong = []
    low = text.lower()
    for term in terms:
        if term.lower().split()[0] not in low:
            continue
        # a longer glossary term that contains this one ("domain classifier") speaks for itself
        longer = [t for t in terms if len(t) > len(term) and term.lower() in t.lower()]
        scrubbed = text
        for t in longer:
            scrubbed = re.sub(re.escape(t).replace(r"\ ", r"[\s-]+"), " ", scrubbed, flags=re.I)
        for given in names_given(term, scrubbed):
            if not given.endswith(names[term]):
                wrong.append(f"{term!r} ({given}): the glossary says {names[term]}")
    assert not wrong, f"{path.relative_to(ROOT)}: " + "; ".join(sorted(set(wrong)))


@pytest.mark.parametrize("path", pages(), ids=lambda p: str(p.relative_to(ROOT)))
def test_no_banned_name(path):
    text = markdown(path)
    found = [f"{bad}: {why}" for bad, why in BANNED.items() if bad in text]
    assert not found, f"{path.relative_to(ROOT)}: " + "; ".join(found)
