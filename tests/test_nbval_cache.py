"""tests/nbval_cache.py: what nbval ran lands in the book's cache, and the book build reuses it.

One nbval run (the plugin loaded as `make notebooks` loads it) over three tiny notebooks in a
temporary folder, with a temporary cache: one that passes, one whose claim check fails, one whose
cell is slower than its book timeout. Each notebook appends a line to a file in its own folder
every time it executes, so the tests can count executions.
"""
from __future__ import annotations

import copy
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
from jupyter_cache import get_cache
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

ROOT = Path(__file__).resolve().parent.parent
BOOK_ENV = {"D2LCORE_STATIC": "1"}  # as `make book` and `make notebooks` set it

COUNT = "with open({name!r}, 'a') as f:\n    f.write('ran\\n')"
GOOD = [  # what MyST-NB's executor handles specially: streams, display updates, clear_output,
    # an empty cell (not executed), an allowed error, widget state
    COUNT.format(name="good-runs.txt") + "\nimport os, pathlib\n"
    "print(os.environ.get('D2LCORE_STATIC'), pathlib.Path.cwd().name, 'PYTEST_VERSION' in os.environ)",
    "import sys\nprint('a warning-like line', file=sys.stderr)",
    "",
    # outputs spelt so that the book page shows them only as outputs, not in the source
    "from IPython.display import clear_output, display\nh = display('fir' + 'st', display_id=True)\n"
    "h.update('up' + 'dated')",
    "print('go' + 'ne')\nclear_output(wait=True)\nprint('ke' + 'pt')",
    "6 * 7",
    ("raise ValueError('on purpose')", ["raises-exception"]),
    "import ipywidgets\nipywidgets.IntSlider(value=3, description='k')",
]
BAD = [COUNT.format(name="bad-runs.txt"), "assert 1 + 1 == 3, 'a claim that does not hold'"]
SLOW = ["import time\ntime.sleep(2)"]


def write_notebook(path: Path, cells, **metadata) -> Path:
    nb = new_notebook(metadata={
        "kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"},
        **metadata})
    nb.cells.append(new_markdown_cell("# A notebook"))
    for cell in cells:
        source, tags = cell if isinstance(cell, tuple) else (cell, [])
        nb.cells.append(new_code_cell(source, metadata={"tags": tags} if tags else {}))
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, path)
    return path


def runs(path: Path) -> int:
    return len(path.read_text().splitlines()) if path.exists() else 0


@pytest.fixture(scope="module")
def nbval_run(tmp_path_factory):
    """Run nbval with the plugin, as `make notebooks` does, once for the whole module."""
    tmp = tmp_path_factory.mktemp("nbval_cache")
    book = tmp / "book"
    good = write_notebook(book / "chapter" / "good.ipynb", GOOD)
    bad = write_notebook(book / "chapter" / "bad.ipynb", BAD)
    slow = write_notebook(tmp / "elsewhere" / "slow.ipynb", SLOW, execution={"timeout": 1})
    cache = tmp / "cache"
    args = [sys.executable, str(ROOT / "tests" / "nbval_cache.py"), "-q", "-p", "no:cacheprovider",
            "--nbval-lax", f"--nbval-cache={cache}", str(good), str(bad), str(slow)]
    result = subprocess.run(args, cwd=tmp, capture_output=True, text=True, timeout=300,
                            env={**os.environ, **BOOK_ENV})
    return {"result": result, "good": good, "bad": bad, "slow": slow, "cache": cache,
            "book": book, "tmp": tmp}


def read(path: Path):
    return nbformat.read(path, as_version=4)


def test_nbval_reports_the_failing_claim_and_every_notebook_ran_once(nbval_run):
    result = nbval_run["result"]
    assert result.returncode == 1, result.stdout + result.stderr  # bad.ipynb fails, as it must
    assert "a claim that does not hold" in result.stdout
    assert "1 failed" in result.stdout and "10 passed" in result.stdout, result.stdout
    for name in ("good", "bad"):
        assert runs(nbval_run[name].parent / f"{name}-runs.txt") == 1


def test_a_passing_notebook_is_in_the_cache_and_matched_as_read_from_disk(nbval_run):
    cache = get_cache(str(nbval_run["cache"]))
    good = read(nbval_run["good"])
    record = cache.match_cache_notebook(good)  # KeyError when not cached
    assert record.uri == str(nbval_run["good"])
    _, merged = cache.merge_match_into_notebook(good)  # what MyST-NB renders
    outputs = [c.outputs for c in merged.cells if c.cell_type == "code"]
    assert outputs[0] == [nbformat.from_dict(
        {"output_type": "stream", "name": "stdout", "text": "1 chapter False\n"})]  # book env, cwd
    assert [o.data["text/plain"] for o in outputs[3]] == ["'updated'"]  # display update applied
    assert [o.text for o in outputs[4]] == ["kept\n"]  # clear_output applied
    assert outputs[5][0].execution_count == 5 and outputs[6][0].ename == "ValueError"
    assert "application/vnd.jupyter.widget-state+json" in merged.metadata.widgets
    assert "nbval cache: 1 of 3 notebooks stored" in nbval_run["result"].stdout


def test_a_failing_or_too_slow_notebook_is_not_cached(nbval_run):
    cache = get_cache(str(nbval_run["cache"]))
    assert [r.uri for r in cache.list_cache_records()] == [str(nbval_run["good"])]
    for name in ("bad", "slow"):
        with pytest.raises(KeyError):
            cache.match_cache_notebook(read(nbval_run[name]))
    out = nbval_run["result"].stdout
    assert re.search(r"bad.ipynb: .*Cell 1 failed", out), out
    assert re.search(r"slow.ipynb: Cell 0 took \d+ s, over the book's 1 s timeout", out), out


def normalised(nb) -> str:
    """The executed code cells and notebook metadata as JSON, widget model ids (random) blanked,
    widget states as a sorted list."""
    blank = lambda text: re.sub(r"[0-9a-f]{32}", "MODEL", text)  # noqa: E731
    metadata = copy.deepcopy(nb.metadata)
    widgets = metadata.get("widgets", {}).get("application/vnd.jupyter.widget-state+json", {})
    if "state" in widgets:
        widgets["state"] = sorted(blank(json.dumps(v, sort_keys=True))
                                  for v in widgets["state"].values())
    cells = [(c.execution_count, c.outputs) for c in nb.cells if c.cell_type == "code"]
    return blank(json.dumps({"metadata": metadata, "cells": cells}, sort_keys=True))


def test_the_cached_notebook_is_what_the_book_executor_produces(nbval_run, tmp_path, monkeypatch):
    """The same notebook executed by MyST-NB's own call (jupyter-cache, nbclient) matches."""
    from jupyter_cache.executors.utils import single_nb_execution

    for key, value in BOOK_ENV.items():
        monkeypatch.setenv(key, value)
    for key in [k for k in os.environ if k.startswith("PYTEST_")]:  # the book runs outside pytest
        monkeypatch.delenv(key)
    copy = tmp_path / "chapter" / "good.ipynb"  # same folder name: the notebook prints it
    copy.parent.mkdir()
    shutil.copy(nbval_run["good"], copy)
    nb = read(copy)
    result = single_nb_execution(nb, cwd=str(copy.parent), timeout=60, allow_errors=False,
                                 meta_override=True)  # myst_nb.core.execute.cache
    assert result.err is None, result.exc_string
    cache = get_cache(str(nbval_run["cache"]))
    cached = cache.get_cache_bundle(cache.match_cache_notebook(nb).pk).nb
    assert normalised(cached) == normalised(nb)


def test_the_book_build_executes_only_what_nbval_did_not_cache(nbval_run):
    """A Sphinx build with MyST-NB in cache mode, as jupyter-book runs it, over good and bad."""
    book, out = nbval_run["book"], nbval_run["tmp"] / "html"
    (book / "index.md").write_text("# Book\n\n```{toctree}\nchapter/good\nchapter/bad\n```\n")
    (book / "conf.py").write_text(
        "extensions = ['myst_nb']\n"
        f"nb_execution_mode = 'cache'\nnb_execution_cache_path = {str(nbval_run['cache'])!r}\n"
        "nb_execution_raise_on_error = False\nexclude_patterns = ['_build']\n")
    result = subprocess.run([sys.executable, "-m", "sphinx", "-b", "html", str(book), str(out)],
                            capture_output=True, text=True, timeout=300,
                            env={**os.environ, **BOOK_ENV})
    assert result.returncode == 0, result.stdout + result.stderr
    assert runs(book / "chapter" / "good-runs.txt") == 1  # taken from the cache
    assert runs(book / "chapter" / "bad-runs.txt") == 2  # executed again, and fails there
    assert "Using cached notebook" in result.stdout
    page = (out / "chapter" / "good.html").read_text()
    assert "updated" in page and "kept" in page and "first" not in page and "gone" not in page


def test_two_workers_store_their_notebooks_and_share_the_cpus(tmp_path):
    """Under xdist (`make notebooks` runs ``-n 2 --dist loadfile``) each worker stores what passed,
    the controller prints every worker's summary, and each kernel gets its share of the CPUs."""
    from d2lcore.notebook import usable_cpus

    record = "import os\nopen('threads.txt', 'w').write(' '.join(os.environ.get(v, 'unset') " \
             "for v in ('D2LCORE_THREADS', 'OMP_NUM_THREADS')))"
    threads = write_notebook(tmp_path / "a" / "threads.ipynb", [record])
    bad = write_notebook(tmp_path / "b" / "bad.ipynb", BAD)
    cache = tmp_path / "cache"
    env = {k: v for k, v in os.environ.items() if k not in ("D2LCORE_THREADS", "OMP_NUM_THREADS")}
    result = subprocess.run(
        [sys.executable, str(ROOT / "tests" / "nbval_cache.py"), "-q", "-p", "no:cacheprovider",
         "-n", "2", "--dist", "loadfile", "--nbval-lax", f"--nbval-cache={cache}",
         str(threads), str(bad)],
        cwd=tmp_path, capture_output=True, text=True, timeout=300, env={**env, **BOOK_ENV})
    out = result.stdout + result.stderr
    assert result.returncode == 1, out  # bad.ipynb fails, as it must
    assert "nbval cache: 1 of 2 notebooks stored" in out, out
    assert re.search(r"bad.ipynb: .*Cell 1 failed", out), out
    share = str(max(1, usable_cpus() // 2))
    assert (threads.parent / "threads.txt").read_text() == f"{share} {share}"
    assert [r.uri for r in get_cache(str(cache)).list_cache_records()] == [str(threads)]


def test_make_book_executes_two_at_once_into_the_cache_and_names_a_failure(tmp_path):
    """_ext/execute_book.py (the first step of `make book`): what passes is stored as the build
    would store it, a failing notebook is named with its error and not stored, the exit status
    says so, and a second call runs nothing that is already cached."""
    sys.path.insert(0, str(ROOT / "_ext"))
    try:
        import execute_book
    finally:
        sys.path.remove(str(ROOT / "_ext"))
    record = "import os\nprint(os.environ.get('D2LCORE_THREADS'), os.environ.get('D2LCORE_STATIC'))"
    good = write_notebook(tmp_path / "a" / "good.ipynb",
                          [COUNT.format(name="good-runs.txt"), record])
    bad = write_notebook(tmp_path / "b" / "bad.ipynb", BAD)
    cache = tmp_path / "cache"
    env = {k: v for k, v in os.environ.items() if k not in ("D2LCORE_THREADS", "OMP_NUM_THREADS")}
    call = ("import sys; sys.path.insert(0, sys.argv[1]); import execute_book; from pathlib import "
            "Path; sys.exit(execute_book.execute_into_cache([Path(p) for p in sys.argv[3:]], "
            "Path(sys.argv[2]), 2, 60, False))")
    run = lambda: subprocess.run(  # noqa: E731
        [sys.executable, "-c", call, str(ROOT / "_ext"), str(cache), str(good), str(bad)],
        cwd=tmp_path, capture_output=True, text=True, timeout=300, env={**env, **BOOK_ENV})
    first = run()
    out = first.stdout + first.stderr
    assert first.returncode == 1, out
    assert "1 of 2 executed and cached" in out and "bad.ipynb failed" in out, out
    assert "a claim that does not hold" in first.stderr, out
    cached = get_cache(str(cache))
    assert [r.uri for r in cached.list_cache_records()] == [str(good)]
    with pytest.raises(KeyError):
        cached.match_cache_notebook(read(bad))
    _, merged = cached.merge_match_into_notebook(read(good))
    from d2lcore.notebook import usable_cpus
    share = str(max(1, usable_cpus() // 2))
    assert merged.cells[-1].outputs[0].text == f"{share} 1\n"  # its share, the book's env
    second = run()
    assert runs(good.parent / "good-runs.txt") == 1, second.stdout  # not run again
    assert runs(bad.parent / "bad-runs.txt") == 2 and second.returncode == 1
    assert execute_book.book_settings()["mode"] == "cache"  # what `make book` relies on
