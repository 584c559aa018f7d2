"""benchmarks/gpu_check.py (`make gpu-check`): safe without CUDA, and its report says what ran."""
from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "benchmarks" / "gpu_check.py"


def load():
    spec = importlib.util.spec_from_file_location("gpu_check", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def test_without_cuda_it_says_so_in_one_line_and_exits_0(tmp_path):
    report = tmp_path / "gpu-report.md"
    result = subprocess.run([sys.executable, str(SCRIPT), "--report", str(report)], cwd=ROOT,
                            capture_output=True, text=True, timeout=120,
                            env={**os.environ, "CUDA_VISIBLE_DEVICES": ""})
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        "gpu-check: no CUDA device here (torch.cuda.is_available() is False); nothing to run."]
    assert not report.exists()


def test_the_report_names_the_device_and_every_stage_and_fails_when_one_did():
    gpu_check = load()
    names = [s.name for s in gpu_check.stages(Path("/tmp"))]
    assert names == ["unit tests", "trainer benchmark", "book benchmark", "nbval, every notebook"]
    device = {"name": "NVIDIA H200", "torch": "2.13.0", "cuda": "12.8", "cudnn": 91000}
    good = gpu_check.Stage("unit tests", ["pytest"], True, 61.2, "1 passed\n")
    bad = gpu_check.Stage("nbval, every notebook", ["make", "notebooks"], False, 99.0,
                          "".join(f"line {i}\n" for i in range(100)) + "1 failed\n")
    text = gpu_check.report(device, [good, bad])
    assert "- device: NVIDIA H200" in text and "torch 2.13.0, CUDA 12.8" in text
    assert "- result: FAIL" in text
    assert "| unit tests | pass | 61 |" in text and "| nbval, every notebook | FAIL | 99 |" in text
    assert "1 failed" in text and "\nline 60\n" not in text and "\nline 61\n" in text  # last 40 lines
    assert "- result: PASS" in gpu_check.report(device, [good])
