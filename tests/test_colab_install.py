"""A notebook runs top to bottom in Colab, where d2lcore is missing until its first cell.

The stand-in for Colab is a virtual environment holding Colab's own versions of what the book
touches, plus ``google.colab`` in ``sys.modules`` (what the install cell looks for). The explorer
gallery then runs from a kernel in that environment with ``D2LCORE_INSTALL_FROM`` naming a copy
of this checkout instead of GitHub. Building the environment takes a minute or so once (torch is
linked from this interpreter when it is the pinned version, rather than unpacked again); it is
kept under _build/colab-venv, keyed by a hash of the package list, and d2lcore is removed from it
again after each run so that every run starts without it.
"""
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOK = ROOT / "chapters" / "explorers.ipynb"  # quick (5 s) and every live view is in it
# Colab's runtime 2026.01 (googlecolab/backend-info, pip-freeze.txt), with the torch the book
# pins. ipywidgets 7.7.1 is the point: Colab's page draws ipywidgets 7 widgets.
COLAB_PACKAGES = [
    "torch==2.13.0", "numpy==2.0.2", "matplotlib==3.10.0", "scipy==1.16.3", "pandas==2.2.2",
    "sympy==1.14.0", "tqdm==4.67.1", "ipywidgets==7.7.1", "widgetsnbextension==3.6.10",
    "ipython==7.34.0", "ipykernel==6.17.1", "jupyter_client==7.4.9", "traitlets==5.7.1",
    "nbclient==0.10.4", "nbformat==5.10.4",
]
CACHE = ROOT / "_build" / "colab-venv"

PRETEND_COLAB = """\
import sys, types
sys.modules["google.colab"] = types.ModuleType("google.colab")  # all the install cell reads"""

# Moves a live view's slider as the page would and checks the picture follows, under the
# ipywidgets the kernel really has (1.5.0 is ipywidgets 7's controls module, which Colab draws).
LIVE_VIEW_CHECK = """\
import ipywidgets
from d2lcore.explore import softmax_categorical as w4
view = w4.show()
view.controls["temperature"].value = 2.0
assert view.readouts == w4.readouts(w4.compute(temperature=2.0))
assert view.widget._model_module_version == "1.5.0", view.widget._model_module_version
print("ipywidgets", ipywidgets.__version__)"""


def run(python: Path, *args: str, check=True) -> subprocess.CompletedProcess:
    # Not from the checkout, where `import d2lcore` would find the source folder.
    return subprocess.run([str(python), *args], capture_output=True, text=True, check=check,
                          cwd=python.parent)


def freeze(python: Path) -> str:
    return run(python, "-m", "pip", "freeze", "--all").stdout


def link_torch(venv: Path) -> None:
    """Lend the new venv this interpreter's torch when it is the version Colab's list pins.

    Linked, pip finds torch installed at the pinned version and installs only its dependencies
    instead of unpacking its 700 MB wheel again. The package is the same either way; only
    where its files lie differs."""
    import importlib.metadata as metadata

    pinned = next(p.split("==")[1] for p in COLAB_PACKAGES if p.startswith("torch=="))
    try:
        dist = metadata.distribution("torch")
    except metadata.PackageNotFoundError:
        return
    if dist.version.split("+")[0] != pinned:
        return  # pip installs the pinned one
    ours = Path(dist.locate_file(""))
    theirs = next((venv / "lib").glob("python3*/site-packages"))
    for name in ("torch", "torchgen", "functorch", f"torch-{dist.version}.dist-info"):
        if (ours / name).exists():
            (theirs / name).symlink_to(ours / name)


def colab_python() -> Path:
    """The Python of the cached Colab-like environment, built on first use."""
    key = hashlib.sha256(json.dumps([sys.version_info[:2], COLAB_PACKAGES]).encode())
    venv = CACHE / key.hexdigest()[:16]
    python = venv / "bin" / "python"
    stamp = venv / ".complete"  # what pip freeze said when it was built
    if stamp.exists() and stamp.read_text() == freeze(python):
        return python
    if CACHE.exists():  # changed since, or an older package list (about 1 GB each): start over
        for stale in CACHE.iterdir():
            shutil.rmtree(stale, ignore_errors=True)
    building = Path(f"{venv}.{os.getpid()}")
    subprocess.run([sys.executable, "-m", "venv", str(building)], check=True)
    link_torch(building)
    # --no-compile: no bytecode for the thousands of modules the test never imports (a third
    # of the build's time); Python compiles what it imports when it imports it.
    done = run(building / "bin" / "python", "-m", "pip", "install", "-q", "--no-compile",
               *COLAB_PACKAGES, check=False)
    assert done.returncode == 0, f"could not build the Colab-like venv:\n{done.stderr[-3000:]}"
    (building / ".complete").write_text(freeze(building / "bin" / "python"))
    # A venv's python finds its prefix from where it lies, so the renamed one works (only
    # console scripts' shebangs would not, and every call here is `python -m`).
    os.replace(building, venv)
    return python


def source_copy(tmp_path: Path) -> Path:
    """What pip needs to build d2lcore, so that the build leaves nothing in the checkout."""
    src = tmp_path / "src"
    shutil.copytree(ROOT / "d2lcore", src / "d2lcore",
                    ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, src / name)
    return src


def test_install_cell_brings_d2lcore_into_a_colab_like_environment(tmp_path, monkeypatch):
    index = run(Path(sys.executable), "-m", "pip", "download", "-q", "--no-deps",
                "--dest", str(tmp_path / "probe"), "setuptools>=77", check=False)
    if index.returncode != 0:
        pytest.skip("no package index reachable (pip needs one to build the Colab-like venv "
                    f"and d2lcore): {index.stderr.strip()[-300:]}")
    python = colab_python()
    run(python, "-m", "pip", "uninstall", "-q", "-y", "d2lcore")  # left by an interrupted run
    missing = run(python, "-c", "import d2lcore", check=False)
    assert "No module named 'd2lcore'" in missing.stderr, "the environment must start without it"

    kernels = tmp_path / "jupyter" / "kernels" / "colab"
    kernels.mkdir(parents=True)
    (kernels / "kernel.json").write_text(json.dumps({
        "argv": [str(python), "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "Colab stand-in", "language": "python",
        "env": {"D2LCORE_INSTALL_FROM": str(source_copy(tmp_path))}}))
    monkeypatch.setenv("JUPYTER_PATH", str(tmp_path / "jupyter"))
    monkeypatch.delenv("PYTHONPATH", raising=False)

    from nbclient import NotebookClient
    nb = nbformat.read(NOTEBOOK, as_version=4)
    nb.cells.insert(0, nbformat.v4.new_code_cell(PRETEND_COLAB))
    nb.cells.append(nbformat.v4.new_code_cell(LIVE_VIEW_CHECK))
    try:
        NotebookClient(nb, kernel_name="colab", timeout=300,
                       resources={"metadata": {"path": str(tmp_path)}}).execute()
        installed = run(python, "-c", "from importlib.metadata import version as v; import "
                        "d2lcore; print(v('d2lcore'), v('ipywidgets'), d2lcore.__file__)")
    finally:
        run(python, "-m", "pip", "uninstall", "-q", "-y", "d2lcore", check=False)

    expected = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    d2lcore, ipywidgets, where = installed.stdout.split()
    assert d2lcore == expected, f"installed d2lcore {d2lcore}, pyproject.toml says {expected}"
    assert Path(where).is_relative_to(python.parent.parent), f"d2lcore came from {where}"
    # Without --no-deps pip would have upgraded it to 8, which Colab's page does not draw.
    assert ipywidgets == "7.7.1", f"the install cell replaced Colab's ipywidgets by {ipywidgets}"
    assert nb.cells[-1].outputs[0]["text"].strip() == "ipywidgets 7.7.1"
