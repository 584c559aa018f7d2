"""The repository's address and the release are written once, in pyproject.toml; the book's
configuration, the README and the Colab install cell (tests/test_notebook_format.py) repeat
them and must not drift."""
import re
import tomllib
from pathlib import Path

import yaml

import d2lcore

ROOT = Path(__file__).resolve().parent.parent
PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
URL = PROJECT["urls"]["Repository"]


def test_book_configuration_links_the_repository():
    config = yaml.safe_load((ROOT / "_config.yml").read_text())
    assert config["repository"]["url"] == URL, \
        f"_config.yml repository.url is {config['repository']['url']}, pyproject.toml says {URL}"


def test_readme_names_only_this_repository():
    readme = (ROOT / "README.md").read_text()
    found = re.findall(r"https://github\.com/[\w.-]+/[\w.-]+", readme)
    assert URL in found, f"the README should name the repository, {URL}"
    assert set(found) == {URL}, f"README names {sorted(set(found) - {URL})}; pyproject says {URL}"


def test_package_version_is_the_release_the_notebooks_install():
    assert d2lcore.__version__ == PROJECT["version"], \
        f"d2lcore.__version__ is {d2lcore.__version__}, pyproject.toml says {PROJECT['version']}"
