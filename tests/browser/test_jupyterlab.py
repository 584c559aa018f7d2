"""The live experience end to end: the explorer gallery in JupyterLab, driven by headless Chromium.

This is the frontend Binder serves. JupyterLab is started on localhost over copies of the gallery
and of one chapter section in a temporary directory, made as Binder's postBuild makes them
(tools/myst_for_binder.py turns {term}, {doc} and {cite} roles into links to the published book;
the repository's notebooks are never touched). The notebook is opened in Chromium with every
request that leaves localhost aborted, all cells are run, one slider of one explorer (W4,
softmax: "temperature T") is moved by typing into the slider's readout, and the explorer's
readout table must then show exactly what ``compute`` gives. The section must read as in the
book: roles as words and working links, solutions folded, claim checks collapsed after Run All.

Does not need the built book (no ``site`` fixture); skips only when Chromium or JupyterLab is
missing.
"""
from __future__ import annotations

import collections
import json
import os
import re
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from conftest import ROOT, SCREENSHOTS, screenshot

sys.path.insert(0, str(ROOT / "tools"))
import myst_for_binder  # noqa: E402  (what postBuild runs on Binder's copies)

NOTEBOOK = ROOT / "chapters" / "explorers.ipynb"
SECTION = ROOT / "chapters" / "03_softmax_regression" / "cross_entropy.ipynb"  # math, terms, solutions
EXPLORER_TITLE = "Softmax builds a categorical distribution"
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
    book = myst_for_binder.Book.load()
    for notebook in (NOTEBOOK, SECTION):
        _binder_copy(notebook, root / notebook.name, book)
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


def _binder_copy(notebook: Path, target: Path, book: "myst_for_binder.Book") -> None:
    """The notebook as Binder's image holds it: its MyST roles rewritten by postBuild's script."""
    content = json.loads(notebook.read_text())
    myst_for_binder.rewrite_notebook(content, notebook, book)
    target.write_text(json.dumps(content, indent=1, ensure_ascii=False) + "\n")


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
    the exercise solutions folded away until asked for, and glossary terms, page references and
    citations as words that link to the published book."""
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

    # {term}, {doc} and {cite} (as Binder's postBuild rewrites them) read as words and open the
    # published book: no "Citation Not Found" sign with a BibTeX key, no file stem, no link to "#".
    book = myst_for_binder.Book.load()
    source = json.loads(SECTION.read_text())
    roles = [m.groups() for cell in source["cells"] if cell["cell_type"] == "markdown"
             for m in myst_for_binder.ROLE.finditer("".join(cell["source"]))]
    assert {role for role, _ in roles} == {"term", "doc", "cite"}, f"{SECTION.name} should use all three roles"
    plain = shown.replace("\xa0", " ")
    for raw in {raw for role, body in roles for raw in _raw_forms(role, body)}:
        assert raw not in plain, f"{SECTION.name}: role text {raw!r} shown in JupyterLab"
    assert page.locator(".jp-MarkdownCell [title='Citation Not Found']").count() == 0, "unresolved citation"
    assert "⚠" not in shown
    links = markdown.locator("a").evaluate_all("as => as.map(a => [a.getAttribute('href'), a.innerText.trim()])")
    assert not [text for href, text in links if href in ("#", "", None)], f"links to nowhere: {links}"
    to_book = [(href, text) for href, text in links if href.startswith(book.url)]
    assert all(text for _, text in to_book), f"a link without words: {to_book}"
    expected = collections.Counter(url for cell in _rewritten(SECTION, book)["cells"]
                                   if cell["cell_type"] == "markdown"
                                   for url in _LINK.findall("".join(cell["source"])) if url.startswith(book.url))
    assert collections.Counter(href for href, _ in to_book) == expected, "rendered links differ from the rewrite's"
    glossary, bibliography = f"{book.url}glossary.html#term-negative-log-likelihood", f"{book.url}bibliography.html"
    assert (glossary, "negative log-likelihood") in to_book, to_book
    assert (bibliography, "Shannon 1948") in to_book, to_book
    screenshot(page, "jupyterlab-chapter-section")

    # A link opens the published book in a new tab (caught here: the network is cut off) and
    # leaves the notebook where it was.
    opened = []
    page.context.route(f"{book.url}**", lambda route: (opened.append(route.request.url), route.abort()))
    with page.context.expect_page() as new_tab:
        markdown.locator(f"a[href='{bibliography}']", has_text="Shannon 1948").first.click()
    new_tab.value.wait_for_load_state()
    assert opened == [bibliography], f"clicking 'Shannon 1948' requested {opened}"
    assert page.url.startswith(f"{base}/lab/tree/{SECTION.name}"), f"the notebook's tab navigated to {page.url}"
    assert not visit.errors, f"page errors: {visit.errors}"
    assert not visit.blocked, f"requests that left localhost: {visit.blocked}"


_LINK = re.compile(r"\[(?:\\.|[^\]\\])*\]\(([^)\s]+)\)")  # a Markdown link's URL


def _raw_forms(role: str, body: str) -> list[str]:
    """What a role shows when it is not resolved: "words <target>", a BibTeX key, a file path.
    (A bare page name such as "calculus" may also be a word of the prose, so it is not looked for.)"""
    if role == "cite":
        return [key.strip() for key in body.split(",")]
    return [body] if "<" in body or "/" in body else []


def _rewritten(notebook: Path, book: "myst_for_binder.Book") -> dict:
    content = json.loads(notebook.read_text())
    myst_for_binder.rewrite_notebook(content, notebook, book)
    return content


def test_claim_checks_stay_collapsed_after_run_all(request, visit, screenshot_on_failure):
    """Claim checks (tag remove-cell) assert the numbers of the prose and the exercises' answers.
    The book removes them; JupyterLab must keep them collapsed, input and output, after Run All.
    It honours the notebook's jupyter.source_hidden / outputs_hidden metadata (which
    tools/notebooks.py --fix writes), and its collapsed-input placeholder still shows the first
    line of the source, so that line must be a comment."""
    from playwright.sync_api import expect

    cells = json.loads(SECTION.read_text())["cells"]
    checks = [i for i, cell in enumerate(cells)
              if cell["cell_type"] == "code" and "remove-cell" in cell["metadata"].get("tags", [])]
    assert checks, f"{SECTION.name} has no claim checks to look at"
    first_lines = {i: "".join(cells[i]["source"]).splitlines()[0] for i in checks}
    open_ = [cells[i]["id"] for i in checks if not all(
        cells[i]["metadata"].get("jupyter", {}).get(key) is True for key in ("source_hidden", "outputs_hidden"))]
    assert not open_, (f"{SECTION.name}: claim checks {open_} are not collapsed in JupyterLab (no "
                       "jupyter.source_hidden/outputs_hidden metadata); run python tools/notebooks.py --fix")
    telling = [f"{cells[i]['id']}: {first_lines[i]!r}" for i in checks if not first_lines[i].startswith("#")]
    assert not telling, (f"{SECTION.name}: JupyterLab's collapsed placeholder shows a claim check's first line, "
                         f"and these start with code: {telling}; start each with a comment line")

    base, token = request.getfixturevalue("jupyterlab")  # started once the notebook is known to be fit
    page = visit.page
    page.set_default_timeout(30_000)
    page.goto(f"{base}/lab/tree/{SECTION.name}?token={token}")
    shown_cells = page.locator(".jp-NotebookPanel .jp-Notebook .jp-Cell")
    shown_cells.first.wait_for()
    _start_kernel(page, base, token)
    idle = page.locator(".jp-NotebookPanel .jp-Notebook-ExecutionIndicator[data-status='idle']")
    idle.wait_for(timeout=60_000)
    page.locator(".lm-MenuBar-item", has_text="Run").first.click()
    page.locator(".lm-Menu-item:visible", has_text="Run All Cells").first.click()
    # Run All reached the end: the last code cell that readers see has its execution count.
    last_open = max(i for i, cell in enumerate(cells) if cell["cell_type"] == "code" and i not in checks)
    expect(shown_cells.nth(last_open).locator(".jp-InputPrompt").first).to_have_text(re.compile(r"\[\d+\]:"),
                                                                                   timeout=120_000)
    idle.wait_for(timeout=60_000)
    assert shown_cells.count() == len(cells), "JupyterLab lays out every cell (windowing off)"

    for i in checks:
        cell = shown_cells.nth(i)
        placeholder = cell.locator(".jp-InputPlaceholder")
        expect(placeholder).to_be_visible()
        assert placeholder.inner_text().strip() == first_lines[i], f"cell {cells[i]['id']}: placeholder shows something else"
        expect(cell.locator(".jp-InputArea")).to_be_hidden()
        assert cell.locator(".jp-OutputArea-output:visible").count() == 0, f"cell {cells[i]['id']}: output shown"

    # What the page shows: every line of the open code cells, and no line of a claim check but its
    # first (comment) line. Lines an open cell also has (a shared `for` loop) prove nothing.
    shown = page.locator(".jp-NotebookPanel .jp-Notebook").inner_text()
    open_lines = {line.strip() for i, cell in enumerate(cells) if cell["cell_type"] == "code" and i not in checks
                  for line in "".join(cell["source"]).splitlines() if line.strip()}
    unseen = [line for line in open_lines if line not in shown]
    assert not unseen, f"the test cannot read the open cells' code: {unseen[:3]}"
    for i in checks:
        hidden = {line.strip() for line in "".join(cells[i]["source"]).splitlines()[1:] if line.strip()} - open_lines
        assert hidden, f"cell {cells[i]['id']}: nothing of it to look for"
        visible = [line for line in hidden if line in shown]
        assert not visible, f"claim check {cells[i]['id']}: {visible[:3]} visible after Run All"
    for n in (1, 3):
        solution = page.locator(".jp-MarkdownCell details", has_text=f"Solution to {n}")
        assert solution.get_attribute("open") is None, f"Solution to {n} opened by Run All"
    shown_cells.nth(checks[-1]).scroll_into_view_if_needed()
    screenshot(page, "jupyterlab-claim-checks-collapsed")
    assert not visit.errors, f"page errors: {visit.errors}"
    assert not visit.blocked, f"requests that left localhost: {visit.blocked}"
