"""Fixtures for driving the built HTML book in headless Chromium.

The book is served from ``_build/html`` on localhost; every request that leaves localhost is
aborted and recorded, so a page that needs the network fails its test instead of passing here
and breaking offline.
"""
from __future__ import annotations

import functools
import http.server
import os
import shutil
import threading
from pathlib import Path
from urllib.parse import urlparse

import pytest

ROOT = Path(__file__).resolve().parents[2]
HTML = ROOT / "_build" / "html"
SCREENSHOTS = ROOT / "_build" / "screenshots"


def screenshot(page, name: str) -> Path:
    """Save what the browser shows under _build/screenshots/, for a human to look at."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=False)
    return path


def chromium_path() -> str | None:
    return os.environ.get("D2LCORE_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.fixture(scope="session")
def site():
    if not (HTML / "index.html").exists():
        pytest.fail(f"no built book at {HTML}; run `make book` first (make browser does)")
    handler = functools.partial(_QuietHandler, directory=str(HTML))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@pytest.fixture(scope="session")
def browser():
    path = chromium_path()
    if path is None:
        reason = ("no Chromium found (install Debian's `chromium`, which `make browser-setup` does as root, "
                  "or set D2LCORE_CHROMIUM); browser tests not run")
        print("SKIP:", reason)
        pytest.skip(reason)
    from playwright.sync_api import sync_playwright
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=path, args=["--no-sandbox"])
        yield browser
        browser.close()


class Visit:
    """One page load with the network cut off: what was blocked, and what the page threw."""

    def __init__(self, page):
        self.page = page
        self.blocked: list[str] = []
        self.errors: list[str] = []
        self.console_errors: list[str] = []
        self.failed: list[str] = []
        page.on("pageerror", lambda error: self.errors.append(str(error)))
        page.on("console", lambda message: self.console_errors.append(message.text) if message.type == "error" else None)
        page.on("response", lambda response: self.failed.append(f"{response.status} {response.url}")
                if response.status >= 400 else None)
        page.route("**/*", self._route)

    def _route(self, route):
        host = urlparse(route.request.url).hostname
        if route.request.url.startswith(("data:", "file:")) or host in ("127.0.0.1", "localhost"):
            route.continue_()
        else:
            self.blocked.append(route.request.url)
            route.abort("internetdisconnected")


def _visit(browser, **context_options):
    context = browser.new_context(viewport={"width": 1280, "height": 900}, **context_options)
    yield Visit(context.new_page())
    context.close()


@pytest.fixture
def visit(browser):
    yield from _visit(browser)


@pytest.fixture
def offline_visit(browser):
    """A visit in a browser context that has no network at all, for pages opened from disk."""
    yield from _visit(browser, offline=True)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """Record each phase's report on the test item, so fixtures can tell whether the test failed."""
    outcome = yield
    report = outcome.get_result()
    setattr(item, f"rep_{report.when}", report)
