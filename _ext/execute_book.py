"""Execute the book's notebooks several at a time, into the cache the book build reads.

`make book` runs this before `jupyter-book build`. The build (MyST-NB, ``execute_notebooks:
cache``) executes, one after another, every notebook it does not find in its jupyter-cache; on two
cores most of a small notebook's time is the kernel starting and importing torch, which one core
does while the other waits. Here ``--workers`` notebooks run at once, each kernel with its share of
the CPUs (``$OMP_NUM_THREADS`` and ``$D2LCORE_THREADS``, unless the caller set them: two kernels
that each start one thread per core only spin against each other), the slowest first
(``tests/toc.py``'s recorded seconds). Each notebook is executed exactly as MyST-NB executes it
(jupyter-cache's ``single_nb_execution``, in the notebook's folder, with the per-cell ``timeout``
and ``allow_errors`` of ``_config.yml``; only the kernel is stopped at the end rather than asked
to exit) and stored the way MyST-NB stores it, so the build then
takes every page from the cache. Notebooks already in the cache (same code cells, same
kernelspec) are not run again.

A notebook that fails is not stored; its error (notebook, cell, exception) is printed, and the
exit status is 1, so that `make book` stops there rather than execute it a second time.
Run: ``python _ext/execute_book.py [--workers 2]``.
"""
from __future__ import annotations

import argparse
import sys
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path

import nbformat
import yaml
from jupyter_cache import get_cache
from jupyter_cache.base import CacheBundleIn
from jupyter_cache.executors.utils import single_nb_execution

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
from toc import heaviest_first, toc_notebooks  # noqa: E402


def book_settings() -> dict:
    config = yaml.safe_load((ROOT / "_config.yml").read_text()) or {}
    execute = config.get("execute") or {}
    return {"mode": execute.get("execute_notebooks", "auto"),
            "cache": ROOT / execute.get("cache", "_build/.jupyter_cache"),
            "timeout": execute.get("timeout", 30),
            "allow_errors": bool(execute.get("allow_errors", False))}


def execute(path: Path, timeout, allow_errors) -> tuple[Path, dict, float, str | None]:
    """One notebook, as MyST-NB's cache mode executes it; runs in a worker process."""
    nb = nbformat.read(path, as_version=4)
    # shutdown_kernel="immediate": once the last cell has run, the kernel is stopped rather than
    # asked to exit, which after importing torch takes it most of a second (nbval stops its
    # kernels the same way); every output is in by then.
    result = single_nb_execution(nb, cwd=str(path.parent), timeout=timeout,
                                 allow_errors=allow_errors, meta_override=True,
                                 shutdown_kernel="immediate")
    error = None if result.err is None else (result.exc_string or repr(result.err))
    return path, nb, result.time, error


def execute_into_cache(notebooks: list[Path], cache_path: Path, workers: int, timeout,
                       allow_errors: bool) -> int:
    """Run the notebooks not yet in the cache, ``workers`` at once; 1 if any failed, else 0."""
    cache = get_cache(str(cache_path))
    todo = []
    for path in notebooks:
        try:
            cache.match_cache_notebook(nbformat.read(path, as_version=4))
        except KeyError:  # not in the cache, or its code changed since
            todo.append(path)
    if not todo:
        print("execute_book: every notebook is in the execution cache")
        return 0
    from d2lcore.notebook import share_cpus  # imports torch: only when there is work

    threads = share_cpus(workers)
    print(f"execute_book: {len(todo)} notebooks, {workers} at a time, {threads} thread(s) each",
          flush=True)
    failed, start = [], time.perf_counter()
    with ProcessPoolExecutor(workers) as pool:
        jobs = [pool.submit(execute, p, timeout, allow_errors) for p in heaviest_first(todo)]
        for job in as_completed(jobs):
            path, nb, seconds, error = job.result()
            name = path.relative_to(ROOT) if path.is_relative_to(ROOT) else path
            if error:
                failed.append((name, error))
                print(f"  FAILED {name} after {seconds:.1f} s", flush=True)
                continue
            # stored as MyST-NB stores a notebook it executed (myst_nb.core.execute.cache)
            cache.cache_notebook_bundle(CacheBundleIn(nb, str(path),
                                                      data={"execution_seconds": seconds}),
                                        check_validity=False, overwrite=True)
            print(f"  {seconds:6.1f} s  {name}", flush=True)
    print(f"execute_book: {len(todo) - len(failed)} of {len(todo)} executed and cached in "
          f"{time.perf_counter() - start:.0f} s")
    for name, error in failed:
        print(f"\n{name} failed, so the book was not built:\n{error}", file=sys.stderr)
    if failed:
        print("Fix the cell named above and run `make book` again; the notebooks that passed "
              "are cached and will not run again.", file=sys.stderr)
    return 1 if failed else 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=2,
                        help="notebooks at once (default 2); 0 or 1 leaves execution to the build")
    args = parser.parse_args()
    settings = book_settings()
    if settings["mode"] != "cache" or args.workers <= 1:
        print("execute_book: nothing to do (the build executes the notebooks itself)")
        return 0
    return execute_into_cache(toc_notebooks(), settings["cache"], args.workers,
                              settings["timeout"], settings["allow_errors"])


if __name__ == "__main__":
    sys.exit(main())
