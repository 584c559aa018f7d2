"""Every page of the built book, in headless Chromium with the network cut off."""
import re
import sys
from pathlib import Path

import pytest
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from toc import ROOT, toc_files  # noqa: E402
from conftest import screenshot  # noqa: E402

PAGES = toc_files()
CONFIG = yaml.safe_load((ROOT / "_config.yml").read_text())
REPOSITORY = re.sub(r"^https://github.com/", "", CONFIG["repository"]["url"]).rstrip("/")
BRANCH = CONFIG["repository"].get("branch", "main")


@pytest.mark.parametrize("page", PAGES)
def test_page_reads_offline_typeset_unclipped_and_launchable(site, visit, page):
    """One visit per page (a page load is most of a browser test's time), four checks:

    - it loads with the network cut off, with no failed request and no console error;
    - every formula is typeset and no raw TeX is left in the text;
    - code (at most 88 characters a line) and printed output fit the column at the book's
      default width (1280 pixels): nothing hides behind a horizontal scroll bar;
    - a notebook's page launches Binder (JupyterLab) and Colab on its own notebook.
    """
    visit.page.goto(f"{site}/{page}.html", wait_until="networkidle")
    assert not visit.blocked, f"{page} needs the network: {visit.blocked}"
    assert not visit.failed, f"{page} has failed requests: {visit.failed}"
    assert not visit.errors and not visit.console_errors, f"{page}: {visit.errors + visit.console_errors}"
    if visit.page.locator(".math").count():
        # attached, not visible: the first formula may sit in a folded solution
        visit.page.wait_for_selector("mjx-container", state="attached", timeout=15_000)
        text = visit.page.locator("article").evaluate(
            "a => { const c = a.cloneNode(true); c.querySelectorAll('pre, code, mjx-container, script')"
            ".forEach(e => e.remove()); return c.innerText; }")
        assert not re.search(r"\\\(|\\\[|\$\$|(?<![\\\w])\$[^$\s][^$]*\$", text), f"{page}: raw TeX left in the text"
        assert visit.page.locator(".math").count() == visit.page.locator(".math mjx-container").count(), \
            f"{page}: some math was not typeset"
    clipped = visit.page.locator("div.cell_input pre, div.cell_output pre").evaluate_all(
        "els => els.filter(e => e.scrollWidth > e.clientWidth + 1)"
        ".map(e => e.innerText.split('\\n').reduce((a, b) => a.length >= b.length ? a : b).slice(0, 100))")
    assert not clipped, f"{page}: {len(clipped)} code or output block(s) wider than the column, e.g. {clipped[:2]}"
    if (ROOT / f"{page}.ipynb").exists():
        links = visit.page.locator("a[href]").evaluate_all("els => els.map(e => e.href)")
        binder = f"https://mybinder.org/v2/gh/{REPOSITORY}/{BRANCH}?urlpath=lab/tree/{page}.ipynb"
        colab = f"https://colab.research.google.com/github/{REPOSITORY}/blob/{BRANCH}/{page}.ipynb"
        assert binder in links, f"{page}: no Binder (JupyterLab) button for its notebook"
        assert colab in links, f"{page}: no Colab button for its notebook"


def test_screenshots_of_three_representative_pages(site, visit):
    chosen = [PAGES[0], "chapters/03_softmax_regression/cross_entropy", "chapters/explorers"]  # cover, math, widgets
    for page in chosen:
        visit.page.goto(f"{site}/{page}.html", wait_until="networkidle")
        path = screenshot(visit.page, page.replace("/", "__"))
        assert path.stat().st_size > 10_000, f"{path} looks empty"


def test_search_finds_a_term_offline(site, visit):
    visit.page.goto(f"{site}/search.html?q=entropy", wait_until="networkidle")
    results = visit.page.locator("ul.search li")
    results.first.wait_for(timeout=15_000)
    pages = results.locator("a").evaluate_all("els => els.map(e => e.getAttribute('href'))")
    assert any("information_theory" in p for p in pages), pages
    assert not visit.errors and not visit.failed and not visit.blocked


def test_glossary_lists_terms_with_chinese_names_and_chapters_link_to_it(site, visit):
    visit.page.goto(f"{site}/glossary.html", wait_until="load")
    terms = visit.page.locator("dl.glossary dt")
    assert terms.count() >= 30
    text = visit.page.locator("dl.glossary").inner_text()
    assert "交叉熵" in text and "熵" in text and "KL 散度" in text
    visit.page.goto(f"{site}/chapters/03_softmax_regression/information_theory.html", wait_until="load")
    links = visit.page.locator("a[href*='glossary.html#term-']")
    assert links.count() >= 3, "chapter text should link its key terms to the glossary"
