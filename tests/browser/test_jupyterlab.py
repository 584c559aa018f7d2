"""The live experience end to end: the explorer gallery in JupyterLab, driven by headless Chromium.

This is the frontend Binder serves. JupyterLab is started on localhost over a copy of the gallery
notebook in a temporary directory (the repository's notebook is never touched), the notebook is
opened in Chromium with every request that leaves localhost aborted, all cells are run, one
slider of one explorer (W4, softmax: "temperature T") is moved by typing into the slider's
readout, and the explorer's readout table must then show exactly what ``compute`` gives.

Does not need the built book (no ``site`` fixture); skips only when Chromium or JupyterLab is
missing.
"""
from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from conftest import ROOT, SCREENSHOTS, screenshot

NOTEBOOK = ROOT / "chapters" / "explorers.ipynb"
SECTION = ROOT / "chapters" / "03_softmax_regression" / "cross_entropy.ipynb"  # math, terms, solutions
EXPLORER_TITLE = "W4 · Softmax builds a categorical distribution"
SLIDER_LABEL = "temperature T"
READOUT = "entropy H(p)"
NEW_VALUE = 2.0  # the default is 1.0; 2.0 lies on the slider's 0.1 grid
SERVER_START_S = 60


def _skip(reason: str):
    print("SKIP:", reason)
    pytest.skip(reason)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def jupyterlab(tmp_path):
    """JupyterLab serving copies of the gallery and of one chapter section; yields (base URL, token)."""
    try:
        import jupyterlab  # noqa: F401
        import ipywidgets  # noqa: F401
    except ImportError as error:
        _skip(f"JupyterLab or ipywidgets not installed ({error}); JupyterLab test not run")
    root = tmp_path / "lab"
    root.mkdir()
    for notebook in (NOTEBOOK, SECTION):
        shutil.copy(notebook, root / notebook.name)
    port, token = _free_port(), secrets.token_hex(16)
    env = {k: v for k, v in os.environ.items() if k != "D2LCORE_STATIC"}
    # Keep the user's Jupyter config, settings, workspaces and runtime files out of it (and ours out of theirs).
    for var, sub in (("JUPYTER_CONFIG_DIR", "config"), ("JUPYTER_RUNTIME_DIR", "runtime"), ("IPYTHONDIR", "ipython")):
        (tmp_path / sub).mkdir()
        env[var] = str(tmp_path / sub)
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), *filter(None, [env.get("PYTHONPATH")])])  # d2lcore from here
    command = [sys.executable, "-m", "jupyter", "lab", "--no-browser", "--ip", "127.0.0.1", "--port", str(port),
               "--ServerApp.port_retries=0", f"--IdentityProvider.token={token}", "--ServerApp.password=",
               "--ServerApp.allow_root=True", "--ServerApp.terminals_enabled=False",
               "--ServerApp.root_dir", str(root), "--ServerApp.disable_check_xsrf=True",
               # nothing that would reach the network
               "--LabApp.news_url=None", "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
               "--LabApp.extension_manager=readonly",
               "--LabApp.user_settings_dir", str(tmp_path / "settings"),
               "--LabApp.workspaces_dir", str(tmp_path / "workspaces")]
    # Settings for this run only: lay out every cell (the default windowing hides cells scrolled
    # out of view, which a test cannot read) and do not ask about fetching Jupyter news.
    for plugin, settings in {"notebook-extension/tracker": {"windowingMode": "none"},
                             "apputils-extension/notification": {"fetchNews": "false"}}.items():
        path = tmp_path / "settings" / "@jupyterlab" / f"{plugin}.jupyterlab-settings"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(settings))
    log = open(tmp_path / "jupyterlab.log", "w+")
    server = subprocess.Popen(command, cwd=root, env=env, stdout=log, stderr=subprocess.STDOUT,
                              start_new_session=True)  # its own process group: the kernel goes with it
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + SERVER_START_S
        while True:
            if server.poll() is not None:
                pytest.fail(f"JupyterLab exited with {server.returncode}:\n{_tail(log)}")
            try:
                with urllib.request.urlopen(f"{base}/api/status?token={token}", timeout=2) as response:
                    json.load(response)
                    break
            except OSError:
                if time.monotonic() > deadline:
                    pytest.fail(f"JupyterLab did not answer within {SERVER_START_S} s:\n{_tail(log)}")
                time.sleep(0.3)
        yield base, token
    finally:
        _stop(server)
        log.close()


def _tail(log, chars: int = 4000) -> str:
    log.flush()
    log.seek(0)
    return log.read()[-chars:]


def _stop(server: subprocess.Popen) -> None:
    """Stop the server (it shuts its kernels down on SIGTERM), then anything left in its group."""
    if server.poll() is None:
        server.send_signal(signal.SIGTERM)
        try:
            server.wait(timeout=15)
        except subprocess.TimeoutExpired:
            pass
    try:
        os.killpg(server.pid, signal.SIGKILL)  # a kernel that outlived the server, or the server itself
    except ProcessLookupError:
        pass
    server.wait(timeout=10)


def _start_kernel(page, base: str, token: str, timeout_s: float = 60) -> None:
    """Wait until the server has a kernel for the open notebook, answering the kernel dialog if
    JupyterLab shows one instead of starting the kernel itself."""
    dialog = page.locator(".jp-Dialog", has_text="Select Kernel")
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if dialog.is_visible():
            dialog.get_by_role("button", name="Select", exact=True).click()
        with urllib.request.urlopen(f"{base}/api/sessions?token={token}", timeout=5) as response:
            if any(session.get("kernel") for session in json.load(response)):
                return
        page.wait_for_timeout(200)
    pytest.fail(f"no kernel started within {timeout_s} s")


@pytest.fixture
def screenshot_on_failure(request, visit):
    """Keep what the browser showed when the test fails: a screenshot for a human to look at."""
    (SCREENSHOTS / "jupyterlab-failure.png").unlink(missing_ok=True)  # none left from an earlier run
    yield
    report = getattr(request.node, "rep_call", None)
    if report is not None and report.failed:
        print(f"JupyterLab test failed; the browser's view is in {screenshot(visit.page, 'jupyterlab-failure')}")


def test_explorer_slider_updates_readout_in_jupyterlab(jupyterlab, visit, screenshot_on_failure):
    from playwright.sync_api import expect

    from d2lcore.explore import softmax_categorical
    expected = softmax_categorical.readouts(softmax_categorical.compute(temperature=NEW_VALUE))[READOUT]
    default = softmax_categorical.readouts(softmax_categorical.compute())[READOUT]
    assert expected != default, "pick a value whose readout differs from the default's"

    base, token = jupyterlab
    page = visit.page
    page.set_default_timeout(30_000)
    page.goto(f"{base}/lab/tree/{NOTEBOOK.name}?token={token}")
    idle = page.locator(".jp-NotebookPanel .jp-Notebook-ExecutionIndicator[data-status='idle']")

    # The notebook is open. JupyterLab either starts its kernel or asks which one to start (some
    # versions do, and so may Binder): answer as a reader would, with the preselected "Python 3".
    page.locator(".jp-NotebookPanel .jp-Notebook .jp-Cell").first.wait_for()
    _start_kernel(page, base, token)
    idle.wait_for(timeout=60_000)

    # The book's markdown is MyST: with jupyterlab-myst (as on Binder) its roles render, so the
    # reader sees "negative log-likelihood", not "{term}`negative log-likelihood <...>`".
    intro = page.locator(".jp-NotebookPanel .jp-MarkdownCell").first
    expect(intro).to_contain_text("negative log-likelihood")
    intro_text = intro.inner_text()  # what is shown; the hidden editor holds the raw source
    assert "{term}" not in intro_text and "{doc}" not in intro_text, f"MyST roles shown raw: {intro_text[:300]!r}"
    screenshot(page, "jupyterlab-gallery-opened")

    # Run -> Run All Cells, as a reader would.
    page.locator(".lm-MenuBar-item", has_text="Run").first.click()
    page.locator(".lm-Menu-item:visible", has_text="Run All Cells").first.click()

    # W4's live view: the widget box holding its title, its sliders and its readout table.
    explorer = page.locator(".jp-OutputArea-output .widget-vbox", has_text=EXPLORER_TITLE)
    cell = explorer.locator(f"td.d2l-readout[data-name='{READOUT}']")
    cell.wait_for(state="attached", timeout=60_000)
    idle.wait_for(timeout=60_000)  # every cell has run
    slider = explorer.locator(".widget-slider", has=page.locator(".widget-label", has_text=SLIDER_LABEL))
    assert slider.count() == 1, f"expected one {SLIDER_LABEL!r} slider in the W4 explorer, found {slider.count()}"
    cell.scroll_into_view_if_needed()
    before = cell.text_content().strip()
    assert before == default, f"W4 {READOUT!r} before moving the slider: {before!r}, compute gives {default!r}"
    figure = explorer.locator(".jp-OutputArea-output img, .widget-image").first
    picture_before = figure.get_attribute("src")

    # Move the slider: type the new value into its readout and press Enter.
    slider.locator(".widget-readout").click()
    page.keyboard.press("Control+A")
    page.keyboard.type(str(NEW_VALUE))
    page.keyboard.press("Enter")

    # The kernel recomputes and the readout table changes to what compute gives.
    expect(cell).not_to_have_text(before, timeout=30_000)
    expect(slider.locator(".widget-readout")).to_have_text(f"{NEW_VALUE:.2f}")
    cell.scroll_into_view_if_needed()
    after = cell.text_content().strip()
    assert after == expected, f"W4 {READOUT!r} after T={NEW_VALUE}: {after!r}, compute gives {expected!r}"
    assert figure.get_attribute("src") != picture_before, "the readout changed but the figure was not redrawn"
    explorer.scroll_into_view_if_needed()
    screenshot(page, "jupyterlab-w4-temperature-2")
    assert not visit.errors, f"page errors: {visit.errors}"
    assert not visit.blocked, f"requests that left localhost: {visit.blocked}"


def test_a_chapter_section_reads_in_jupyterlab_as_in_the_book(jupyterlab, visit, screenshot_on_failure):
    """Binder readers open the chapter notebooks: the MyST markup must render there too, with
    the exercise solutions folded away until asked for."""
    from playwright.sync_api import expect

    base, token = jupyterlab
    page = visit.page
    page.set_default_timeout(30_000)
    page.goto(f"{base}/lab/tree/{SECTION.name}?token={token}")
    markdown = page.locator(".jp-NotebookPanel .jp-MarkdownCell")
    # The last markdown cells hold the exercises: once the first solution is a folded dropdown,
    # every cell has been rendered.
    solution = page.locator(".jp-MarkdownCell details", has_text="Solution to 1")
    expect(solution).to_have_count(1, timeout=30_000)
    assert solution.get_attribute("open") is None, "the solution should start folded"
    expect(markdown.first).to_contain_text("cross-entropy")
    shown = "\n".join(markdown.evaluate_all("cells => cells.map(c => c.innerText)"))
    for raw in ("{term}", "{doc}", "{cite}", "```{admonition}", ":class: dropdown"):
        assert raw not in shown, f"{SECTION.name}: MyST markup {raw!r} shown raw in JupyterLab"
    # math is typeset (MathJax in JupyterLab takes a moment)
    page.locator(".jp-MarkdownCell mjx-container, .jp-MarkdownCell .katex").first.wait_for(state="attached", timeout=20_000)
    assert "expected loss" not in solution.inner_text(), "the folded solution's text is visible"
    screenshot(page, "jupyterlab-chapter-section")
    assert not visit.errors, f"page errors: {visit.errors}"
    assert not visit.blocked, f"requests that left localhost: {visit.blocked}"
