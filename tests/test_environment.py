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


def test_every_book_pin_is_repeated_exactly_in_environment_yml():
    pins = binder_pins()
    for line in pyproject()["project"]["optional-dependencies"]["book"]:
        req = Requirement(line)
        assert pins.get(req.name.lower()) == str(req.specifier), (
            f"{req.name}: pyproject.toml [book] says {req.specifier}, environment.yml says "
            f"{pins.get(req.name.lower())}; make them equal")


def test_book_pins_satisfy_the_package_ranges():
    book = {Requirement(r).name.lower(): Requirement(r) for r in pyproject()["project"]["optional-dependencies"]["book"]}
    for line in pyproject()["project"]["dependencies"]:
        req = Requirement(line)
        assert req.name.lower() in book, f"{req.name} is a d2lcore dependency but has no pin in [book]"
        pinned = next(iter(book[req.name.lower()].specifier)).version
        assert req.specifier.contains(pinned), f"{req.name}=={pinned} is outside d2lcore's range {req.specifier}"


def test_binder_installs_d2lcore_from_the_repository_and_cpu_torch():
    env_text = (ROOT / "environment.yml").read_text()
    assert re.search(r"^\s*- -e \.\s*$", env_text, re.M), "environment.yml must install d2lcore with '-e .'"
    assert "whl/cpu" in env_text, "Binder should get the CPU build of torch"
    assert "python=3.11" in env_text


def test_binder_python_is_supported_by_the_package():
    from packaging.specifiers import SpecifierSet
    assert "3.11" in SpecifierSet(pyproject()["project"]["requires-python"])
