"""The static explorers in the built book move in a real browser, with no kernel and no network."""
import hashlib
import json
import re
import sys
from pathlib import Path

import pytest

from d2lcore import explore

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from toc import ROOT, toc_files  # noqa: E402

GALLERY = "chapters/explorers.html"


def explorer_modules():
    return [name for name in explore.__all__ if name != "toolkit"]


def picture(image) -> str:
    """A digest of what the browser actually drew for this image element."""
    return hashlib.sha256(image.screenshot()).hexdigest()[:16]


def explorer_calls(page: str) -> int:
    """How many explorers a notebook of the toc shows: its code cells' ``explore.<name>.show(`` calls."""
    path = ROOT / f"{page}.ipynb"
    if not path.exists():
        return 0
    cells = json.loads(path.read_text())["cells"]
    return sum(len(re.findall(r"explore\.\w+\.show\(", "".join(c["source"]))) for c in cells if c["cell_type"] == "code")


EMBEDDING = [p for p in toc_files() if explorer_calls(p) and f"{p}.html" != GALLERY]


def check_explorers_move(page, visit, expected: int) -> None:
    roots = page.locator(".d2l-explorer")
    assert roots.count() == expected, f"expected {expected} static explorers, found {roots.count()}"
    for i in range(roots.count()):
        root = roots.nth(i)
        title = root.locator("div").first.inner_text()
        slider = root.locator("input.d2l-frame-slider")
        image = root.locator("img.d2l-frame")
        root.scroll_into_view_if_needed()
        frames = int(root.get_attribute("data-frames"))
        assert frames >= 2, f"{title}: a static view needs at least two frames"
        start = int(slider.input_value())
        target = "Home" if start == frames - 1 else "End"  # move to whichever end is farther
        before = (picture(image), root.locator(".d2l-frame-readouts").inner_text(),
                  root.locator(".d2l-frame-value").inner_text())
        slider.focus()
        page.keyboard.press(target)
        assert int(slider.input_value()) in (0, frames - 1) and int(slider.input_value()) != start, title
        after = (picture(image), root.locator(".d2l-frame-readouts").inner_text(),
                 root.locator(".d2l-frame-value").inner_text())
        assert after[0] != before[0], f"{title}: moving the slider did not change the picture"
        assert after[2] != before[2], f"{title}: the slider's value label did not follow"
        assert after[1] != before[1], f"{title}: the readouts did not change with the frame"
    assert not visit.errors, f"JavaScript errors: {visit.errors}"


def test_every_explorer_on_the_gallery_page_moves_offline(site, visit):
    visit.page.goto(f"{site}/{GALLERY}", wait_until="load")
    assert explorer_calls(GALLERY[:-5]) == len(explorer_modules()), "the gallery shows every explorer once"
    check_explorers_move(visit.page, visit, len(explorer_modules()))


@pytest.mark.parametrize("page", EMBEDDING)
def test_explorers_embedded_in_chapters_move_offline(site, visit, page):
    visit.page.goto(f"{site}/{page}.html", wait_until="load")
    check_explorers_move(visit.page, visit, explorer_calls(page))


def test_the_static_view_needs_nothing_from_the_network(site, visit):
    visit.page.goto(f"{site}/{GALLERY}", wait_until="load")
    # Whatever the theme tries to fetch from CDNs is blocked here; the explorers must not be
    # among it: their frames are data: URIs and their script is inline.
    explorer_html = visit.page.locator(".d2l-explorer").evaluate_all("els => els.map(e => e.outerHTML).join('')")
    assert explorer_html, "no explorer found on the gallery page"
    assert not re.search(r"(src|href)=[\"']?(https?:)?//", explorer_html), "an explorer loads something from the network"
