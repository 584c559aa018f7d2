"""The built book opened straight from disk (file://) with the browser offline.

A reader who downloads `_build/html` and double-clicks a page has no server and maybe no network:
math must still be typeset (MathJax is vendored next to the pages) and the static explorers must
still move (their frames and script are inline).
"""
import pytest

from conftest import HTML, screenshot
from test_explorer_pages import GALLERY, check_explorers_move, explorer_calls

# The gallery holds every explorer; the cross-entropy section holds math and one explorer.
PAGES = [GALLERY[:-5], "chapters/03_softmax_regression/cross_entropy"]


@pytest.mark.parametrize("name", PAGES)
def test_page_from_disk_offline_typesets_math_and_moves_explorers(offline_visit, name):
    path = HTML / f"{name}.html"
    if not path.exists():
        pytest.fail(f"no built page {path}; run `make book` first")
    page = offline_visit.page
    page.goto(path.as_uri(), wait_until="load")
    if page.locator(".math").count():
        page.wait_for_selector("mjx-container", timeout=15_000)
        page.wait_for_function("() => document.querySelectorAll('.math').length === "
                               "document.querySelectorAll('.math mjx-container').length", timeout=15_000)
    else:
        assert name == GALLERY[:-5], f"{name}: expected math on this page"
    assert explorer_calls(name) > 0, f"{name}: expected an explorer on this page"
    check_explorers_move(page, offline_visit, explorer_calls(name))
    screenshot(page, f"from-disk-offline__{name.replace('/', '__')}")  # the last explorer, moved
    assert not offline_visit.blocked, f"{name} from disk needs the network: {offline_visit.blocked}"
    assert not offline_visit.errors, f"{name} from disk: {offline_visit.errors}"
