"""Seconds and peak memory of every notebook of the book, executed as the book build executes it.

Each notebook in ``_toc.yml`` runs in a fresh kernel through nbclient, as `make book` runs it
(_ext/execute_book.py, which calls jupyter-cache's ``single_nb_execution`` as MyST-NB does): the
notebook's own kernelspec, the notebook's folder as working directory, the per-cell timeout of
``_config.yml``, ``D2LCORE_STATIC=1`` so explorers build their static views, and the kernel
stopped once its last cell has run. Nothing is cached or written back.

The table gives, per notebook, per chapter (folder) and in total:

- seconds:  wall time of the notebook, kernel start included (what the build spends on it);
- peak MiB: the kernel process's peak resident memory (VmHWM in /proc/<pid>/status, the
            high-water mark the OS keeps; elsewhere the largest RSS psutil saw after any cell);
- the three slowest cells of each notebook, by index in the notebook and first line.

With ``--jobs N`` the notebooks run N at a time, each kernel with ``CPUs // N`` threads, the
slowest first: as `make book` executes them (_ext/execute_book.py). The last line is then the
wall-clock time of the whole book, the number a reader waits for; the per-notebook seconds are
each notebook's own, with a share of the CPU.

Budget (DESIGN.md, Notebooks): each notebook at most 60 s on a 2-core CPU to itself (checked in
the serial run; notebooks over it are marked), the whole book at most 5 minutes.
Never part of `make test`. Run: ``python benchmarks/book.py [--jobs 2] [--only SUBSTRING ...]``
(`make benchmark` runs it serially and with two at once).
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from itertools import repeat
from pathlib import Path

import nbformat
import yaml
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError, CellTimeoutError, DeadKernelError

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
from toc import heaviest_first, toc_notebooks  # noqa: E402

BOOK_ENV = {"D2LCORE_STATIC": "1"}  # as `make book` sets it (Makefile: BOOK_ENV)
NOTEBOOK_BUDGET_S = 60
BOOK_BUDGET_S = 300
MIB = 2**20


def peak_rss(pid: int) -> tuple[int | None, str]:
    """Peak resident bytes of a process so far, and how it was measured."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024, "VmHWM"
    except OSError:
        pass
    try:
        import psutil

        return psutil.Process(pid).memory_info().rss, "psutil RSS"
    except Exception:  # psutil missing, or the process is gone
        return None, "unavailable"


class Timed(NotebookClient):
    """nbclient as the book build uses it, timing every cell and watching the kernel's memory."""

    def __init__(self, nb, **kw):
        super().__init__(nb, on_cell_execute=self._started, on_cell_executed=self._finished, **kw)
        self.cell_seconds: dict[int, float] = {}
        self.peak: int | None = None
        self.memory_source = "unavailable"
        self.current: int | None = None  # the cell being executed
        self._start = 0.0

    def _started(self, cell, cell_index):
        self.current = cell_index
        self._start = time.perf_counter()

    def _finished(self, cell, cell_index, execute_reply):
        self.cell_seconds[cell_index] = time.perf_counter() - self._start
        pid = getattr(getattr(self.km, "provisioner", None), "pid", None)
        if pid is not None:
            rss, self.memory_source = peak_rss(pid)
            if rss is not None:
                self.peak = max(self.peak or 0, rss)


def book_execution() -> tuple[float | None, bool]:
    """The per-cell timeout and allow_errors the book build uses (_config.yml)."""
    config = yaml.safe_load((ROOT / "_config.yml").read_text()) or {}
    execute = config.get("execute") or {}
    return execute.get("timeout", 30), bool(execute.get("allow_errors", False))


def run_notebook(path: Path, timeout, allow_errors) -> dict:
    nb = nbformat.read(path, as_version=4)
    if "execution" in nb.metadata:  # jupyter-cache's meta_override
        timeout = nb.metadata.execution.get("timeout", timeout)
        allow_errors = nb.metadata.execution.get("allow_errors", allow_errors)
    client = Timed(nb, timeout=timeout, allow_errors=allow_errors, record_timing=False,
                   shutdown_kernel="immediate",  # as _ext/execute_book.py stops its kernels
                   resources={"metadata": {"path": str(path.parent)}})
    error = None
    start = time.perf_counter()
    try:
        client.execute(cwd=str(path.parent))
    except (CellExecutionError, CellTimeoutError, DeadKernelError) as exc:
        error = f"{type(exc).__name__} in cell {client.current}"
    seconds = time.perf_counter() - start
    slowest = sorted(client.cell_seconds.items(), key=lambda kv: -kv[1])[:3]
    return {
        "path": path.relative_to(ROOT), "seconds": seconds, "peak": client.peak,
        # what is not any cell's: starting the kernel, nbclient's handshake, shutting down
        "outside cells": seconds - sum(client.cell_seconds.values()),
        "first cell": client.cell_seconds[min(client.cell_seconds)] if client.cell_seconds else 0.0,
        "memory": client.memory_source, "error": error,
        "slowest": [(i, s, first_line(nb.cells[i].source)) for i, s in slowest],
    }


def first_line(source: str, width: int = 60) -> str:
    line = next((l for l in source.splitlines() if l.strip()), "")
    return line if len(line) <= width else line[: width - 1] + "…"


def mib(value: int | None) -> str:
    return "?" if value is None else f"{value / MIB:.0f}"


def report(rows: list[dict], wall: float, jobs: int) -> None:
    width = max(len(str(r["path"])) for r in rows) + 2
    print(f"\n{'notebook':<{width}}{'seconds':>9}{'peak MiB':>10}")
    for r in rows:
        # the per-notebook budget is for a notebook with the whole CPU to itself
        over = jobs == 1 and r["seconds"] > NOTEBOOK_BUDGET_S
        flag = f"  over the {NOTEBOOK_BUDGET_S} s budget" if over else ""
        flag += f"  FAILED: {r['error']}" if r["error"] else ""
        print(f"{str(r['path']):<{width}}{r['seconds']:>9.1f}{mib(r['peak']):>10}{flag}")
        for index, seconds, line in r["slowest"]:
            print(f"    cell {index:>3} {seconds:>7.1f} s  {line}")
    chapters: dict[str, list[dict]] = {}
    for r in rows:
        chapters.setdefault(str(r["path"].parent), []).append(r)
    print(f"\n{'chapter':<{width}}{'seconds':>9}{'peak MiB':>10}  notebooks")
    for name, members in chapters.items():
        peaks = [m["peak"] for m in members if m["peak"] is not None]
        print(f"{name:<{width}}{sum(m['seconds'] for m in members):>9.1f}"
              f"{mib(max(peaks) if peaks else None):>10}  {len(members)}")
    total = sum(r["seconds"] for r in rows)
    peaks = [r["peak"] for r in rows if r["peak"] is not None]
    flag = f"  over the {BOOK_BUDGET_S} s budget" if wall > BOOK_BUDGET_S else ""
    print(f"{'total, notebook by notebook':<{width}}{total:>9.1f}"
          f"{mib(max(peaks) if peaks else None):>10}  {len(rows)}")
    print(f"{f'whole book, wall clock ({jobs} at once)':<{width}}{wall:>9.1f}{'':>10}  {flag}")
    outside = sum(r["outside cells"] for r in rows)
    first = sum(r["first cell"] for r in rows)
    print(f"\nOf the {total:.0f} notebook seconds, {outside:.0f} are outside any cell (kernel start and "
          f"shutdown) and {first:.0f} in the first code cells (the imports of torch, matplotlib "
          f"and d2lcore): {(outside + first) / len(rows):.1f} s per notebook before a lesson runs.")
    sources = sorted({r["memory"] for r in rows})
    print(f"\nPeak memory: each notebook's kernel process ({', '.join(sources)}); a chapter's and the "
          "total's is the largest notebook's, since each runs in its own kernel. "
          f"Machine: {os.cpu_count()} CPUs, load {os.getloadavg()[0]:.1f} at the end.")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--only", nargs="+", metavar="SUBSTRING",
                        help="only the notebooks whose path contains one of these")
    parser.add_argument("--jobs", type=int, default=1,
                        help="notebooks at once, each kernel with CPUs // jobs threads, the "
                             "slowest first, as `make book` executes them (default 1: serial)")
    args = parser.parse_args()
    for key, value in BOOK_ENV.items():
        if os.environ.get(key) != value:
            print(f"setting {key}={value} for the kernels, as `make book` does")
            os.environ[key] = value
    notebooks = [p for p in toc_notebooks()
                 if not args.only or any(s in str(p.relative_to(ROOT)) for s in args.only)]
    if not notebooks:
        parser.error("no notebook in _toc.yml matches --only")
    timeout, allow_errors = book_execution()
    start = time.perf_counter()
    if args.jobs <= 1:
        rows = []
        for path in notebooks:
            print(f"executing {path.relative_to(ROOT)}", flush=True)
            rows.append(run_notebook(path, timeout, allow_errors))
    else:
        from d2lcore.notebook import share_cpus

        print(f"{args.jobs} notebooks at once, {share_cpus(args.jobs)} thread(s) each")
        order = heaviest_first(notebooks)
        with ProcessPoolExecutor(args.jobs) as pool:
            done = dict(zip(order, pool.map(run_notebook, order, repeat(timeout),
                                            repeat(allow_errors))))
        rows = [done[p] for p in notebooks]  # reported in book order
    report(rows, wall=time.perf_counter() - start, jobs=args.jobs)
    return 1 if any(r["error"] for r in rows) else 0


if __name__ == "__main__":
    sys.exit(main())
