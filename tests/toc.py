"""The notebooks of the book, read from _toc.yml.

    python tests/toc.py                 print the notebooks in the table of contents, in order
    python tests/toc.py --check-clean   fail if a notebook in chapters/ is stored with outputs
                                        or execution counts, or is missing from the toc
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent


def toc_files(toc_path: Path = ROOT / "_toc.yml") -> list[str]:
    """Every `file:` entry of the toc, in reading order, without extension."""
    toc = yaml.safe_load(toc_path.read_text())
    files = [toc["root"]]

    def walk(entries):
        for entry in entries or []:
            if "file" in entry:
                files.append(entry["file"])
            walk(entry.get("sections"))
            walk(entry.get("chapters"))

    for part in toc.get("parts", []):
        walk(part.get("chapters"))
    walk(toc.get("chapters"))
    return files


def toc_notebooks() -> list[Path]:
    return [ROOT / f"{f}.ipynb" for f in toc_files() if (ROOT / f"{f}.ipynb").exists()]


def dirty_cells(path: Path) -> list[int]:
    """Indices of code cells that carry outputs or an execution count."""
    cells = json.loads(path.read_text())["cells"]
    return [i for i, c in enumerate(cells)
            if c["cell_type"] == "code" and (c.get("outputs") or c.get("execution_count") is not None)]


def check_clean() -> list[str]:
    problems = []
    in_toc = {p.resolve() for p in toc_notebooks()}
    for path in sorted((ROOT / "chapters").rglob("*.ipynb")):
        if ".ipynb_checkpoints" in path.parts:
            continue
        rel = path.relative_to(ROOT)
        if cells := dirty_cells(path):
            problems.append(f"{rel}: code cells {cells} are stored with outputs; clear them "
                            f"(jupyter nbconvert --clear-output --inplace {rel})")
        if path.resolve() not in in_toc:
            problems.append(f"{rel}: not listed in _toc.yml, so the book and nbval would skip it")
    return problems


# Seconds each notebook took in nbval, recorded from the execution cache by `--record-seconds`.
# Only an ordering hint: with two nbval workers, the slowest notebooks go first, so that no worker
# is left with a long one at the end while the other idles. A notebook not listed counts as slow.
SECONDS = ROOT / "tests" / "notebook_seconds.json"


def heaviest_first(paths: list[Path]) -> list[Path]:
    import json

    seconds = json.loads(SECONDS.read_text()) if SECONDS.exists() else {}
    unknown = max(seconds.values(), default=0.0)
    name = lambda p: str(p.relative_to(ROOT)) if p.is_relative_to(ROOT) else str(p)  # noqa: E731
    return sorted(paths, key=lambda p: -seconds.get(name(p), unknown))


def record_seconds(cache: Path = ROOT / "_build" / ".jupyter_cache") -> dict[str, float]:
    """The latest nbval time of every toc notebook in the book's execution cache."""
    import json

    from jupyter_cache import get_cache

    latest = {}
    for record in get_cache(str(cache)).list_cache_records():
        data = record.data or {}
        if data.get("executed_by") == "nbval" and (record.uri not in latest or record.created > latest[record.uri][0]):
            latest[record.uri] = (record.created, round(data["execution_seconds"], 1))
    in_toc = {str(p.resolve()): str(p.relative_to(ROOT)) for p in toc_notebooks()}
    seconds = {in_toc[uri]: s for uri, (_, s) in sorted(latest.items()) if uri in in_toc}
    SECONDS.write_text(json.dumps(seconds, indent=1, sort_keys=True) + "\n")
    return seconds


if __name__ == "__main__":
    if "--check-clean" in sys.argv:
        problems = check_clean()
        print("\n".join(problems) or f"{len(toc_notebooks())} notebooks: no outputs stored, all in the toc")
        sys.exit(1 if problems else 0)
    if "--record-seconds" in sys.argv:
        print(f"{len(record_seconds())} notebooks' nbval seconds written to {SECONDS.relative_to(ROOT)}")
        sys.exit(0)
    paths = heaviest_first(toc_notebooks()) if "--heaviest-first" in sys.argv else toc_notebooks()
    print("\n".join(str(p.relative_to(ROOT)) for p in paths))
