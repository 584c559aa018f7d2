"""nbval's run of each notebook, stored in the book's execution cache, so the book need not rerun it.

`make test` re-runs every notebook with nbval and then builds the book, whose MyST-NB execution
(``execute_notebooks: cache``) would run every notebook again. `make notebooks` runs pytest
through this file, ``python tests/nbval_cache.py PYTEST_ARGS...``, which loads it as a plugin.
The plugin watches the kernel messages nbval reads for each cell and turns them into cell outputs
with nbclient's own message handling (nbclient is the executor MyST-NB uses: streams as they
came, ``clear_output``, display updates, widget state). When every cell of a notebook passed, it
stores the notebook into the book's jupyter-cache: the notebook as read from disk, plus those
outputs, execution counts, ``language_info`` and widget state. MyST-NB finds a notebook in the
cache by a hash of its code cells and kernelspec, so the book build then takes it from there and
executes nothing nbval already ran. A notebook that is not stored is executed by the book build
as before.

A notebook is stored only when the book would have run the same thing the same way:

- every cell ran and passed (no failure, skip, xfail or deselection) and none failed to be
  recorded; a cell error is accepted only where the book accepts it (``raises-exception`` tag or
  ``allow_errors``); no cell took longer than the book's per-cell ``timeout``;
- nbval's kernel is the book's (same kernelspec: command line and environment), started in the
  notebook's folder (as MyST-NB does without ``run_in_temp``) with the book's environment
  (``BOOK_ENV`` below, as `make book` sets it) and without pytest's own variables;
- nbval sends every cell as nbclient does (``store_history``, an in-memory IPython history), so
  execution counts and tracebacks ("Cell In[7]") read as in the book;
- the book uses the cache (``execute_notebooks: cache``) and no cell is tagged ``skip-execution``
  (nbclient skips those; nbval runs them).

Options: ``--nbval-cache DIR`` (default: ``execute.cache`` of ``_config.yml`` in the rootdir, where
the book build looks). The summary at the end says which notebooks were stored and why any was not.

With pytest-xdist (``-n 2 --dist loadfile``: each notebook's cells stay in one worker, in order)
several notebooks run at once. Each worker stores its own notebooks and sends its summary back to
the controller, which prints them all. The kernels then share the CPUs: each gets
``usable CPUs // workers`` threads through ``$D2LCORE_THREADS`` (and ``$OMP_NUM_THREADS``), since
two kernels that each start one thread per core only spin against each other. A value the
caller set is kept.
"""
from __future__ import annotations

import copy
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import nbformat
import pytest
import yaml

# The environment `make book` builds in (Makefile: BOOK_ENV); nbval must run in it too, or the
# cached outputs are not the book's (D2LCORE_STATIC=1: explorers render their static views).
BOOK_ENV = {"D2LCORE_STATIC": "1"}

# nbclient starts IPython kernels with an in-memory history (NotebookClient.ipython_hist_file).
KERNEL_EXTRA_ARGUMENTS = ["--HistoryManager.hist_file=:memory:"]


@dataclass
class BookExecution:
    """How the book build executes notebooks, read from its _config.yml (jupyter-book's keys,
    then any ``sphinx.config`` nb_execution_* override)."""

    cache: Path
    mode: str = "auto"
    timeout: float | None = 30
    allow_errors: bool = False
    in_temp: bool = False

    @classmethod
    def from_config(cls, config_path: Path) -> BookExecution:
        config = yaml.safe_load(config_path.read_text()) or {}
        execute = config.get("execute") or {}
        sphinx = (config.get("sphinx") or {}).get("config") or {}

        def get(sphinx_key, yml_key, default):
            return sphinx.get(sphinx_key, execute.get(yml_key, default))

        mode = get("nb_execution_mode", "execute_notebooks", "auto")
        cache = get("nb_execution_cache_path", "cache", "") or "_build/.jupyter_cache"
        return cls(
            cache=(config_path.parent / cache).resolve(),
            mode="off" if mode is False else str(mode),
            timeout=get("nb_execution_timeout", "timeout", 30),
            allow_errors=bool(get("nb_execution_allow_errors", "allow_errors", False)),
            in_temp=bool(get("nb_execution_in_temp", "run_in_temp", False)),
        )

    def for_notebook(self, nb) -> BookExecution:
        """With the notebook's own overrides: ``mystnb`` metadata (MyST-NB), then ``execution``
        metadata (jupyter-cache's executor, ``meta_override=True``)."""
        mystnb = nb.metadata.get("mystnb") or {}
        execution = nb.metadata.get("execution") or {}
        return BookExecution(
            cache=self.cache,
            mode=mystnb.get("execution_mode", self.mode),
            timeout=execution.get("timeout", mystnb.get("execution_timeout", self.timeout)),
            allow_errors=execution.get("allow_errors",
                                       mystnb.get("execution_allow_errors", self.allow_errors)),
            in_temp=mystnb.get("execution_in_temp", self.in_temp),
        )


def pytest_addoption(parser):
    group = parser.getgroup("nbval-cache", "store nbval's executed notebooks in the book's cache")
    group.addoption("--nbval-cache", metavar="DIR", default=None,
                    help="jupyter-cache folder to store passing notebooks in "
                         "(default: execute.cache of _config.yml in the rootdir)")


def pytest_configure(config):
    if not (getattr(config.option, "nbval", False) or getattr(config.option, "nbval_lax", False)):
        return
    book_config = Path(config.rootpath) / "_config.yml"
    if book_config.exists():
        book = BookExecution.from_config(book_config)
    else:
        book = BookExecution(cache=Path(), mode="cache", timeout=None)
    if config.option.nbval_cache:
        book.cache = Path(config.option.nbval_cache).resolve()
    elif not book_config.exists():
        raise pytest.UsageError(f"nbval_cache: no {book_config} to find the cache in; "
                                "pass --nbval-cache DIR")
    workers = _xdist_workers(config)
    if workers > 1 and not hasattr(config, "workerinput"):  # the controller, before it starts workers
        from d2lcore.notebook import share_cpus

        share_cpus(workers)
        _create_cache(book.cache)  # once, so that two workers do not race to create its database
    config.pluginmanager.register(NbvalCache(config, book), "nbval_cache_recorder")


def _xdist_workers(config) -> int:
    n = getattr(config.option, "numprocesses", None)
    return n if isinstance(n, int) else 0


def _create_cache(folder: Path) -> None:
    from jupyter_cache import get_cache

    get_cache(str(folder)).list_cache_records()  # opening it creates the database


# --- what one notebook's run records ---------------------------------------------------------

@dataclass
class CellRun:
    index: int                      # position in nb.cells
    cell: nbformat.NotebookNode     # the copy being filled with outputs
    msg_id: str | None = None       # nbval's execute request
    complete: bool = False          # the kernel went idle for it
    error: str | None = None        # ename of an error output


@dataclass
class NotebookRun:
    path: Path
    nb: nbformat.NotebookNode       # as read from disk; outputs are filled in here
    book: BookExecution
    nodeids: list[str]
    client: object = None           # nbclient.NotebookClient, used for its message handling only
    kernel: object = None
    language_info: dict | None = None
    executed: int = 0               # cells nbclient would execute, so far
    seconds: float = 0.0
    current: CellRun | None = None
    passed: set = field(default_factory=set)
    problems: list[str] = field(default_factory=list)
    stored: bool = False
    ran: bool = False               # this process ran at least one of its cells

    def problem(self, text: str) -> None:
        if text not in self.problems:
            self.problems.append(text)


class NbvalCache:
    def __init__(self, config, book: BookExecution):
        self.config = config
        self.book = book
        self.runs: dict[str, NotebookRun] = {}       # by nodeid of each cell item
        self.order: list[NotebookRun] = []
        self.from_workers: list[tuple[str, bool, str]] = []  # (notebook, stored, why not)
        self.env_problem = ", ".join(f"{k}={v}" for k, v in BOOK_ENV.items()
                                     if os.environ.get(k) != v)
        self._patch_kernel_start()

    # nbval starts its kernel in IPyNbFile.setup through nbval.kernel.start_new_kernel; start it
    # as nbclient does: in-memory history, and the environment without pytest's own variables.
    def _patch_kernel_start(self):
        import nbval.kernel

        original = nbval.kernel.start_new_kernel
        self._restore = (nbval.kernel, original)

        def start_new_kernel(*args, **kwargs):
            kwargs.setdefault("extra_arguments", list(KERNEL_EXTRA_ARGUMENTS))
            kwargs.setdefault("env", {k: v for k, v in os.environ.items()
                                      if not k.startswith("PYTEST_")})
            return original(*args, **kwargs)

        nbval.kernel.start_new_kernel = start_new_kernel

    def pytest_unconfigure(self, config):
        module, original = self._restore
        module.start_new_kernel = original

    def pytest_collection_finish(self, session):
        from nbval.plugin import IPyNbCell

        by_file: dict = {}
        for item in session.items:
            if isinstance(item, IPyNbCell):
                by_file.setdefault(item.parent, []).append(item)
        for file, items in by_file.items():
            nb = copy.deepcopy(file.nb)
            run = NotebookRun(Path(str(file.fspath)).resolve(), nb, self.book.for_notebook(nb),
                              [i.nodeid for i in items])
            try:
                self._check_notebook(run, file, items)
            except Exception as exc:
                run.problem(f"the cache plugin failed on it: {exc!r}")
            self.order.append(run)
            for item in items:
                self.runs[item.nodeid] = run

    def _check_notebook(self, run: NotebookRun, file, items) -> None:
        if self.env_problem:
            run.problem(f"nbval ran without the book's environment ({self.env_problem})")
        if run.book.mode != "cache":
            run.problem(f"the book does not use the cache (execute_notebooks: {run.book.mode})")
        if run.book.in_temp:
            run.problem("the book runs notebooks in a temporary folder (run_in_temp)")
        code_cells = [c for c in run.nb.cells if c.cell_type == "code"]
        if len(items) != len(code_cells):
            run.problem(f"only {len(items)} of its {len(code_cells)} code cells were selected")
        for i, cell in enumerate(run.nb.cells):
            if "skip-execution" in cell.metadata.get("tags", []):
                run.problem(f"cell {i} is tagged skip-execution: the book skips it, nbval runs it")
        try:
            self._check_kernel(file, run.nb)
        except Exception as exc:  # NoSuchKernel and friends
            run.problem(f"nbval's kernel is not the book's: {exc}")
        from nbclient import NotebookClient

        # No kernel of its own: it is fed nbval's messages. record_timing=False as jupyter-cache's
        # executor (single_nb_execution) calls nbclient.
        run.client = NotebookClient(run.nb, record_timing=False)

    def _check_kernel(self, file, nb) -> None:
        """nbval resolves its kernel as IPyNbFile.setup does; the book as nbclient does."""
        from jupyter_client.kernelspec import KernelSpecManager
        from nbval.kernel import CURRENT_ENV_KERNEL_NAME, NbvalKernelspecManager

        option = file.config.option
        if option.nbval_current_env:
            nbval_name = CURRENT_ENV_KERNEL_NAME
        elif option.nbval_kernel_name:
            nbval_name = option.nbval_kernel_name
        else:
            nbval_name = nb.metadata.get("kernelspec", {}).get("name", "python")
        book_name = nb.metadata.get("kernelspec", {}).get("name") or "python3"
        ours = NbvalKernelspecManager().get_kernel_spec(nbval_name)
        theirs = KernelSpecManager().get_kernel_spec(book_name)
        if (ours.argv, ours.env) != (theirs.argv, theirs.env):
            raise RuntimeError(f"nbval runs {ours.argv} (env {ours.env}), the book "
                               f"{theirs.argv} (env {theirs.env}) for kernel {book_name!r}")

    # --- cell by cell ------------------------------------------------------------------------

    @pytest.hookimpl(hookwrapper=True)
    def pytest_runtest_call(self, item):
        run = self.runs.get(item.nodeid)
        if run is None or run.problems:
            yield
            return
        try:
            self._before_cell(run, item)
        except Exception as exc:
            run.problem(f"the cache plugin failed before {item.name}: {exc!r}")
        start = time.perf_counter()
        yield
        seconds = time.perf_counter() - start
        run.seconds += seconds
        try:
            self._after_cell(run, item, seconds)
        except Exception as exc:
            run.problem(f"the cache plugin failed after {item.name}: {exc!r}")

    def _before_cell(self, run: NotebookRun, item) -> None:
        file = item.parent
        kernel = file.kernel
        if kernel is None:
            raise RuntimeError("nbval has no kernel")
        if run.kernel is None:
            run.kernel = kernel
            self._watch(run, file, kernel)
            run.language_info = self._language_info(kernel)
        elif kernel is not run.kernel:
            raise RuntimeError("nbval restarted the kernel")
        index = next(i for i, c in enumerate(file.nb.cells) if c is item.cell)
        cell = run.nb.cells[index]
        run.current = None
        if not cell.source.strip():  # nbclient does not send empty cells
            return
        cell.outputs = []
        run.client.clear_before_next_output = False
        run.current = CellRun(index, cell)

    def _after_cell(self, run: NotebookRun, item, seconds: float) -> None:
        current, run.current = run.current, None
        if current is None:
            return
        if not current.complete and not current.error:  # nbval stops reading at an error
            run.problem(f"{item.name}: its outputs were not all read")
        run.executed += 1
        current.cell.execution_count = run.executed  # as NotebookClient.async_execute numbers them
        tags = current.cell.metadata.get("tags", [])
        if current.error and not (run.book.allow_errors or "raises-exception" in tags):
            run.problem(f"{item.name} raised {current.error}, which the book build does not allow")
        timeout = run.book.timeout
        if timeout is not None and timeout > 0 and seconds > timeout:
            run.problem(f"{item.name} took {seconds:.0f} s, over the book's {timeout} s timeout")

    def _watch(self, run: NotebookRun, file, kernel) -> None:
        """Record the request id of each cell and see every iopub message nbval reads."""
        kc = kernel.kc
        run.client.kc = kc  # nbclient's Output-widget mimic answers the kernel through it

        def execute_cell_input(cell_input, allow_stdin=None):
            # As nbval sends it, with nbclient's store_history=True (execution counts, In/Out).
            msg_id = kc.execute(cell_input, store_history=bool(cell_input.strip()),
                                allow_stdin=allow_stdin, stop_on_error=False)
            if run.current is not None:
                run.current.msg_id = msg_id
            return msg_id

        read = file.get_kernel_message

        def get_kernel_message(timeout=None, stream="iopub"):
            msg = read(timeout=timeout, stream=stream)
            if stream == "iopub":
                try:
                    self._observe(run, msg)
                except Exception as exc:
                    kind = msg.get("msg_type")
                    run.problem(f"the cache plugin failed on a {kind} message: {exc!r}")
            return msg

        kernel.execute_cell_input = execute_cell_input
        file.get_kernel_message = get_kernel_message

    def _observe(self, run: NotebookRun, msg) -> None:
        """One message through nbclient's handling, as NotebookClient._async_poll_output_msg."""
        from nbclient.exceptions import CellExecutionComplete

        current = run.current
        if current is None or current.complete or current.msg_id is None:
            return
        if msg["parent_header"].get("msg_id") != current.msg_id:
            return
        if msg["msg_type"] == "error":
            current.error = msg["content"].get("ename", "an error")
        msg = dict(msg, header=dict(msg["header"]))  # nbclient rewrites header.msg_type
        try:
            run.client.process_message(msg, current.cell, current.index)
        except CellExecutionComplete:
            current.complete = True

    @staticmethod
    def _language_info(kernel, timeout: float = 30) -> dict:
        """What nbclient writes into the notebook's metadata from the kernel's kernel_info."""
        msg_id = kernel.kc.kernel_info()
        deadline = time.monotonic() + timeout
        while True:
            reply = kernel.kc.get_shell_msg(timeout=max(0.1, deadline - time.monotonic()))
            if reply["parent_header"].get("msg_id") == msg_id:
                return reply["content"]["language_info"]

    # --- outcomes ----------------------------------------------------------------------------

    def pytest_runtest_logreport(self, report):
        run = self.runs.get(report.nodeid)
        if run is None:
            return
        run.ran = True
        name = report.nodeid.rsplit("::", 1)[-1]
        if report.failed:
            run.problem(f"{name} failed")
        elif report.skipped:
            run.problem(f"{name} was skipped" + (" (xfail)" if hasattr(report, "wasxfail") else ""))
        elif report.when == "call":
            run.passed.add(report.nodeid)
        if report.when == "teardown" and report.nodeid == run.nodeids[-1]:
            try:
                self._finish(run)
            except Exception as exc:  # a locked cache database, a full disk: nbval's result stands
                run.problem(f"could not store it: {exc!r}")

    def _finish(self, run: NotebookRun) -> None:
        missing = [n for n in run.nodeids if n not in run.passed]
        if missing and not run.problems:
            run.problem(f"{len(missing)} cells did not pass")
        if run.problems:
            return
        from jupyter_cache import get_cache
        from jupyter_cache.base import CacheBundleIn

        run.client.set_widgets_metadata()  # as NotebookClient.async_execute ends
        run.nb.metadata["language_info"] = run.language_info
        get_cache(str(run.book.cache)).cache_notebook_bundle(
            CacheBundleIn(run.nb, str(run.path),
                          data={"execution_seconds": run.seconds, "executed_by": "nbval"}),
            check_validity=False, overwrite=True)  # as MyST-NB stores what it executed
        run.stored = True

    # --- the summary (under xdist: each worker's, gathered by the controller) ------------------

    def _outcomes(self, ran_only: bool = False) -> list[tuple[str, bool, str]]:
        return [(run.path.name, run.stored, "; ".join(run.problems) or "its last cell never finished")
                for run in self.order if run.ran or not ran_only]

    def pytest_sessionfinish(self, session):
        if hasattr(self.config, "workeroutput"):  # every worker collects every notebook
            self.config.workeroutput["nbval_cache"] = self._outcomes(ran_only=True)

    @pytest.hookimpl(optionalhook=True)
    def pytest_testnodedown(self, node, error):
        self.from_workers.extend(getattr(node, "workeroutput", {}).get("nbval_cache", []))

    def pytest_terminal_summary(self, terminalreporter):
        outcomes = self._outcomes() + self.from_workers
        if not outcomes:
            return
        stored = [name for name, ok, _ in outcomes if ok]
        write = terminalreporter.write_line
        write(f"nbval cache: {len(stored)} of {len(outcomes)} notebooks stored in "
              f"{self.book.cache} for the book build")
        for name, ok, reason in outcomes:
            if not ok:
                write(f"  not stored (the book build will execute it): {name}: {reason}")


if __name__ == "__main__":
    # Run as a script, so that this folder is on sys.path and the plugin loads by name without
    # touching PYTHONPATH, which the kernels would inherit (and a dependency installs a top-level
    # package named `tests`). xdist hands the same sys.path and `-p` to its workers.
    sys.exit(pytest.main(["-p", "nbval_cache", *sys.argv[1:]]))
