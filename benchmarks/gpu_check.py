"""`make gpu-check`: every check of the book on a CUDA device, in one command, and a short report.

Stages, in order (each runs to the end even when an earlier one failed):

1. the unit tests (``pytest tests --ignore=tests/browser``);
2. ``benchmarks/trainer.py --device cuda``: d2lcore's loop against the bare loops;
3. ``benchmarks/book.py``: every notebook executed as the book build does, timed;
4. nbval over every notebook of the book (``make notebooks``), so every claim check runs on CUDA
   (notebooks choose the GPU themselves through ``d2lcore.setup``).

The report, ``_build/gpu-report.md`` (or ``--report FILE``), gives the device name, the torch and
CUDA versions, each stage's result and seconds, and the benchmark tables. The exit status is 0
only when every stage passed. Without CUDA the command says so in one line and exits 0, so it is
safe to run anywhere (CI never has a GPU).
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
PYTHON = sys.executable


@dataclass
class Stage:
    name: str
    command: list[str]
    passed: bool | None = None
    seconds: float = 0.0
    output: str = ""


def stages(report_dir: Path) -> list[Stage]:
    return [
        Stage("unit tests", [PYTHON, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests",
                             "--ignore=tests/browser"]),
        Stage("trainer benchmark", [PYTHON, "benchmarks/trainer.py", "--device", "cuda",
                                    "--markdown", str(report_dir / "gpu-trainer.md")]),
        Stage("book benchmark", [PYTHON, "benchmarks/book.py"]),
        Stage("nbval, every notebook", ["make", "--no-print-directory", "notebooks"]),
    ]


def run(stage: Stage) -> None:
    """Run one stage, echoing its output as it comes and keeping it for the report."""
    print(f"\n=== {stage.name}: {' '.join(stage.command)}", flush=True)
    start = time.perf_counter()
    process = subprocess.Popen(stage.command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                               text=True, env={**os.environ, "D2LCORE_STATIC": "1"})
    lines = []
    for line in process.stdout:
        print(line, end="", flush=True)
        lines.append(line)
    stage.passed = process.wait() == 0
    stage.seconds = time.perf_counter() - start
    stage.output = "".join(lines)


def tail(text: str, n: int = 40) -> str:
    return "".join(text.splitlines(keepends=True)[-n:])


def report(device: dict, done: list[Stage]) -> str:
    """The Markdown report: the device, a table of the stages, then each stage's output (its last
    lines when long; the benchmarks' tables are at the end of theirs)."""
    lines = ["# GPU check", "",
             f"- device: {device['name']}",
             f"- torch {device['torch']}, CUDA {device['cuda']}, cuDNN {device['cudnn']}",
             f"- result: {'PASS' if all(s.passed for s in done) else 'FAIL'}", "",
             "| stage | result | seconds |", "|---|---|---|"]
    lines += [f"| {s.name} | {'pass' if s.passed else 'FAIL'} | {s.seconds:.0f} |" for s in done]
    for s in done:
        lines += ["", f"## {s.name}", "", f"`{' '.join(s.command)}`", "", "```", tail(s.output).rstrip(), "```"]
    return "\n".join(lines) + "\n"


def describe_device() -> dict:
    return {"name": torch.cuda.get_device_name(0), "torch": torch.__version__,
            "cuda": torch.version.cuda, "cudnn": torch.backends.cudnn.version()}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--report", default=str(ROOT / "_build" / "gpu-report.md"))
    args = parser.parse_args(argv)
    if not torch.cuda.is_available():
        print("gpu-check: no CUDA device here (torch.cuda.is_available() is False); nothing to run.")
        return 0
    path = Path(args.report)
    path.parent.mkdir(parents=True, exist_ok=True)
    device, done = describe_device(), []
    for stage in stages(path.parent):
        run(stage)
        done.append(stage)
        path.write_text(report(device, done))  # rewritten after each stage: a cut-off run keeps its report
    print(f"\nReport: {path}")
    return 0 if all(s.passed for s in done) else 1


if __name__ == "__main__":
    sys.exit(main())
