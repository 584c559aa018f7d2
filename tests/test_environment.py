"""Binder's environment.yml and pyproject.toml must describe the same book environment."""
import re
import tomllib
from pathlib import Path

import yaml
from packaging.requirements import Requirement

ROOT = Path(__file__).resolve().parent.parent


def pyproject():
    return tomllib.loads((ROOT / "pyproject.toml").read_text())


def binder_pins() -> dict[str, str]:
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    pip = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict) and "pip" in d)
    pins = {}
    for line in pip:
        if line.startswith("-"):
            continue
        req = Requirement(line)
        pins[req.name.lower()] = str(req.specifier)
    return pins


# [book] pins that Binder leaves out, and why.
NOT_FOR_READERS = {
    # builds the HTML book (Sphinx and its extensions); a Binder reader runs the notebooks and
    # never builds the book, so it would only make the image bigger and slower to build
    "jupyter-book",
}


def test_every_book_pin_is_repeated_exactly_in_environment_yml():
    pins = binder_pins()
    for line in pyproject()["project"]["optional-dependencies"]["book"]:
        req = Requirement(line)
        if req.name.lower() in NOT_FOR_READERS:
            assert req.name.lower() not in pins, f"{req.name} builds the book; Binder readers do not need it"
            continue
        assert pins.get(req.name.lower()) == str(req.specifier), (
            f"{req.name}: pyproject.toml [book] says {req.specifier}, environment.yml says "
            f"{pins.get(req.name.lower())}; make them equal")


def test_every_environment_yml_package_is_pinned_alike_in_pyproject():
    extras = pyproject()["project"]["optional-dependencies"]
    pinned = {Requirement(r).name.lower(): str(Requirement(r).specifier) for r in extras["book"] + extras["test"]}
    for name, specifier in binder_pins().items():
        assert pinned.get(name) == specifier, (
            f"{name}: environment.yml says {specifier}, pyproject.toml [book]/[test] say {pinned.get(name)}")


def test_environment_yml_installs_every_d2lcore_dependency():
    """postBuild installs d2lcore with --no-deps, so environment.yml must bring what it needs."""
    pins = binder_pins()
    for line in pyproject()["project"]["dependencies"]:
        req = Requirement(line)
        assert req.name.lower() in pins, f"{req.name} is a d2lcore dependency that environment.yml does not install"
        assert req.specifier.contains(pins[req.name.lower()].removeprefix("==")), (
            f"environment.yml pins {req.name}{pins[req.name.lower()]}, outside d2lcore's range {req.specifier}")


def test_book_pins_satisfy_the_package_ranges():
    book = {Requirement(r).name.lower(): Requirement(r) for r in pyproject()["project"]["optional-dependencies"]["book"]}
    for line in pyproject()["project"]["dependencies"]:
        req = Requirement(line)
        assert req.name.lower() in book, f"{req.name} is a d2lcore dependency but has no pin in [book]"
        pinned = next(iter(book[req.name.lower()].specifier)).version
        assert req.specifier.contains(pinned), f"{req.name}=={pinned} is outside d2lcore's range {req.specifier}"


def test_binder_installs_d2lcore_after_the_environment_and_cpu_torch():
    """A local requirement such as '-e .' makes repo2docker copy the whole repository before it
    installs the environment, so every commit would reinstall PyTorch; postBuild installs d2lcore
    instead (tests/test_binder.py runs it)."""
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    pip = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict) and "pip" in d)
    local = [line for line in pip if re.match(r"(-e|--editable|-r|-c|--requirement|--constraint)\b|\.|file:", line)]
    assert not local, f"environment.yml names local packages {local}; postBuild installs d2lcore"
    assert re.search(r"^pip install --no-deps -e \.$", (ROOT / "postBuild").read_text(), re.M)
    env_text = (ROOT / "environment.yml").read_text()
    assert "whl/cpu" in env_text, "Binder should get the CPU build of torch"
    assert "python=3.11" in env_text


def test_binder_python_is_supported_by_the_package():
    from packaging.specifiers import SpecifierSet
    assert "3.11" in SpecifierSet(pyproject()["project"]["requires-python"])


def notebook_imports() -> dict[str, set[str]]:
    """Top-level modules each notebook of the toc imports, read from its code cells."""
    import ast
    import json
    import sys as _sys
    _sys.path.insert(0, str(ROOT / "tests"))
    from toc import toc_notebooks
    found = {}
    for path in toc_notebooks():
        for cell in json.loads(path.read_text())["cells"]:
            if cell["cell_type"] != "code":
                continue
            source = "\n".join(line for line in "".join(cell["source"]).splitlines()
                               if not line.lstrip().startswith(("%", "!")))  # IPython magics are not Python
            for node in ast.walk(ast.parse(source)):
                names = [a.name for a in node.names] if isinstance(node, ast.Import) else \
                    [node.module] if isinstance(node, ast.ImportFrom) and node.module and not node.level else []
                for name in names:
                    found.setdefault(name.split(".")[0], set()).add(path.name)
    return found


def test_every_notebook_import_is_installed_by_binder_and_by_the_book_extra():
    import sys as _sys
    from importlib.metadata import packages_distributions
    providers = packages_distributions()
    binder = binder_pins()
    book = {Requirement(r).name.lower() for r in pyproject()["project"]["optional-dependencies"]["book"]}
    imports = notebook_imports()
    assert "d2lcore" in imports and "torch" in imports
    for module, notebooks in sorted(imports.items()):
        if module in _sys.stdlib_module_names or module == "d2lcore":
            continue
        dists = {d.lower() for d in providers.get(module, [])}
        assert dists, f"{module} (imported by {sorted(notebooks)}) is not installed here at all"
        assert dists & book, f"{module} comes from {sorted(dists)}, which pyproject's [book] extra does not pin"
        assert dists & set(binder), f"{module} comes from {sorted(dists)}, which environment.yml does not install"


def test_binder_serves_the_jupyterlab_that_the_end_to_end_test_drives():
    """tests/browser/test_jupyterlab.py checks the live explorers and MyST rendering in JupyterLab;
    Binder must serve that same JupyterLab with the same MyST extension."""
    pins = binder_pins()
    test = {Requirement(r).name.lower(): str(Requirement(r).specifier)
            for r in pyproject()["project"]["optional-dependencies"]["test"]}
    for name in ("jupyterlab", "jupyterlab-myst"):
        assert name in test, f"{name} must be pinned in pyproject.toml [test] for the end-to-end test"
        assert pins.get(name) == test[name], (
            f"{name}: pyproject.toml [test] says {test[name]}, environment.yml says {pins.get(name)}; make them equal")
