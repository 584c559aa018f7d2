"""Binder: postBuild builds the reader's image, and tools/myst_for_binder.py turns the book's
{term}, {doc} and {cite} roles, which jupyterlab-myst cannot resolve across notebooks, into links
to the published book."""
from __future__ import annotations

import collections
import json
import os
import re
import shutil
import stat
import subprocess
import sys
import sysconfig
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tools"))
sys.path.insert(0, str(ROOT / "tests"))
import myst_for_binder as binder  # noqa: E402
from toc import toc_files, toc_notebooks  # noqa: E402

BOOK = binder.Book.load()
ANY_ROLE = re.compile(r"\{(term|doc|cite)(:[\w-]+)?\}")      # also {cite:p} and friends
LINK = re.compile(r"\[((?:\\.|[^\]\\])*)\]\(([^)\s]+)\)")
PUBLISHED = {f"{f}.html" for f in toc_files()}


@pytest.fixture(scope="module")
def glossary_anchors(tmp_path_factory) -> set[str]:
    """The ids Sphinx gives the glossary's terms, from glossary.md built alone (about 2 s)."""
    src = tmp_path_factory.mktemp("glossary")
    shutil.copy(ROOT / "glossary.md", src / "index.md")
    (src / "conf.py").write_text('extensions = ["myst_parser"]\n')
    # Its {doc} links point at pages this little build lacks: those warnings are expected.
    subprocess.run([sys.executable, "-m", "sphinx", "-q", "-b", "html", str(src), str(src / "html")],
                   check=True, capture_output=True)
    return set(re.findall(r'id="(term-[^"]+)"', (src / "html" / "index.html").read_text()))


def markdown(notebook: dict) -> list[tuple[str, str]]:
    return [(cell["id"], "".join(cell["source"])) for cell in notebook["cells"]
            if cell["cell_type"] == "markdown"]


@pytest.mark.parametrize("path", toc_notebooks(), ids=lambda p: str(p.relative_to(ROOT)))
def test_every_role_becomes_a_link_to_the_published_book(path, glossary_anchors):
    original = json.loads(path.read_text())
    notebook = json.loads(path.read_text())
    try:
        binder.rewrite_notebook(notebook, path, BOOK)
    except binder.UnresolvedRole as error:
        pytest.fail(f"unresolved roles in {error}")
    links_before = collections.Counter(link for _, text in markdown(original) for link in LINK.findall(text))
    for cell_id, text in markdown(notebook):
        left = ANY_ROLE.search(text)
        assert left is None, f"{path.name} cell {cell_id}: role left after the rewrite: {text[left.start():][:80]!r}"
    new_links = collections.Counter(link for _, text in markdown(notebook) for link in LINK.findall(text))
    new_links -= links_before
    for words, url in new_links:
        page, _, anchor = url.removeprefix(BOOK.url).partition("#")
        assert url.startswith(BOOK.url) and url.startswith("https://"), f"{path.name}: {url} is not in the book"
        assert words.strip(), f"{path.name}: a link to {url} without words"
        assert page in PUBLISHED, f"{path.name}: [{words}]({url}) points at a page the book does not publish"
        if page == "glossary.html":
            assert anchor in glossary_anchors, f"{path.name}: [{words}]({url}): the glossary has no {anchor!r}"


@pytest.mark.parametrize("path", toc_notebooks(), ids=lambda p: str(p.relative_to(ROOT)))
def test_the_rewrite_keeps_the_notebook_valid_with_its_cell_ids(path):
    """Only markdown sources change, so JupyterLab opens the copy as it opens the original."""
    import nbformat
    original = json.loads(path.read_text())
    notebook = json.loads(path.read_text())
    binder.rewrite_notebook(notebook, path, BOOK)
    nbformat.validate(notebook, version=4)
    assert (notebook["nbformat"], notebook["nbformat_minor"]) >= (4, 5), f"{path.name}: no cell ids before 4.5"
    assert [c.get("id") for c in notebook["cells"]] == [c.get("id") for c in original["cells"]]
    assert all(c.get("id") for c in notebook["cells"]), f"{path.name}: a cell without an id"
    for before, after in zip(original["cells"], notebook["cells"]):
        if before["cell_type"] != "markdown":
            assert before == after, f"{path.name} cell {before['id']}: a {before['cell_type']} cell changed"
        assert before["metadata"] == after["metadata"]


@pytest.fixture
def tiny_book(tmp_path) -> tuple[binder.Book, Path]:
    """A book of two chapters, one glossary term and two references."""
    for name, heading in (("chapters/a/here.ipynb", None), ("chapters/a/there.ipynb", "A *second* page"),
                          ("chapters/b/index.md", "Part B")):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        if name.endswith(".md"):
            (tmp_path / name).write_text(f"Intro.\n\n# {heading}\n\nText.\n")
        else:
            cells = [{"cell_type": "markdown", "source": [f"# {heading or 'Here'}\n", "Text."]}]
            (tmp_path / name).write_text(json.dumps({"cells": cells}))
    book = binder.Book(tmp_path, "https://example.org/book/", {"kl divergence": "KL divergence"},
                       {"shannon1948": "Shannon 1948", "cover2006": "Cover and Thomas 2006"})
    return book, tmp_path / "chapters/a/here.ipynb"


@pytest.mark.parametrize("source, expected", [
    ("the {term}`divergence <KL divergence>` (KL 散度)",
     "the [divergence](https://example.org/book/glossary.html#term-KL-divergence) (KL 散度)"),
    ("see {doc}`there`.", "see [A *second* page](https://example.org/book/chapters/a/there.html)."),
    ("see {doc}`../b/index`", "see [Part B](https://example.org/book/chapters/b/index.html)"),
    ("see {doc}`/chapters/b/index`", "see [Part B](https://example.org/book/chapters/b/index.html)"),
    ("the {doc}`next page <there>`", "the [next page](https://example.org/book/chapters/a/there.html)"),
    ("theory {cite}`shannon1948, cover2006`.",
     "theory ([Shannon 1948](https://example.org/book/bibliography.html); "
     "[Cover and Thomas 2006](https://example.org/book/bibliography.html))."),
    # inside math a link cannot live: the words alone
    ("$$H = \\underbrace{x}_{\\text{{term}`the divergence <KL divergence>`}}$$",
     "$$H = \\underbrace{x}_{\\text{the divergence}}$$"),
    ("$\\text{{cite}`shannon1948`}$", "$\\text{Shannon 1948}$"),
    # between two inline maths, and after an escaped dollar, the role is prose
    ("$a$ {term}`KL <KL divergence>` $b$", "$a$ [KL](https://example.org/book/glossary.html#term-KL-divergence) $b$"),
    ("\\$5, {term}`KL <KL divergence>`", "\\$5, [KL](https://example.org/book/glossary.html#term-KL-divergence)"),
])
def test_each_role_becomes_its_words_and_a_link(tiny_book, source, expected):
    book, notebook = tiny_book
    assert binder.rewrite_markdown(source, notebook, book) == expected


def test_an_unresolved_role_names_the_notebook_and_every_role(tiny_book):
    book, notebook = tiny_book
    source = "{term}`x <no such term>`, {doc}`missing`, {doc}`../../../outside` and {cite}`shannon1948,nokey`"
    with pytest.raises(binder.UnresolvedRole) as error:
        binder.rewrite_markdown(source, notebook, book)
    message = str(error.value)
    assert str(notebook) in message
    for role in ("{term}`x <no such term>`", "{doc}`missing`", "{doc}`../../../outside`",
                 "{cite}`shannon1948,nokey`"):
        assert role in message


def test_glossary_anchors_are_the_ids_sphinx_gives_the_terms(glossary_anchors):
    mine = {binder.term_anchor(term) for term in BOOK.terms.values()}
    assert len(mine) == len(BOOK.terms), "two glossary terms share an anchor"
    assert mine == glossary_anchors, f"ours only: {mine - glossary_anchors}, Sphinx's only: {glossary_anchors - mine}"


def test_citations_name_the_authors_as_bibtex_reads_them():
    """Every reference's "Author Year", checked against pybtex (which the book's
    sphinxcontrib-bibtex uses) for the names and their LaTeX accents."""
    import codecs

    import latexcodec  # noqa: F401  (registers the "ulatex" codec)
    from pybtex.database import parse_file
    entries = parse_file(str(ROOT / "references.bib")).entries
    assert set(BOOK.citations) == set(entries)
    for key, entry in entries.items():
        people = entry.persons.get("author") or entry.persons["editor"]
        names = [codecs.decode(" ".join(p.prelast_names + p.last_names), "ulatex").replace("{", "").replace("}", "")
                 for p in people]
        who = names[0] if len(names) == 1 else " and ".join(names) if len(names) == 2 else f"{names[0]} et al."
        assert BOOK.citations[key] == f"{who} {entry.fields['year']}", key
    assert BOOK.citations["quinonero2009"] == "Quiñonero-Candela et al. 2009"


def test_the_published_book_is_the_github_pages_site_of_the_repository():
    urls = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["urls"]
    owner, name = re.fullmatch(r"https://github\.com/([^/]+)/([^/]+)", urls["Repository"]).groups()
    assert urls["Documentation"] == f"https://{owner}.github.io/{name}/"
    assert BOOK.url == urls["Documentation"]


# --- postBuild -----------------------------------------------------------------------------

def test_binder_reads_its_configuration_from_the_repository_root():
    """repo2docker reads environment.yml and postBuild from binder/ or .binder/ when either
    folder exists, and then ignores the ones at the root."""
    for folder in ("binder", ".binder"):
        assert not (ROOT / folder).exists(), f"{folder}/ would make Binder ignore environment.yml and postBuild"
    post_build = ROOT / "postBuild"
    assert post_build.read_text().startswith("#!/bin/bash\n")
    assert post_build.stat().st_mode & stat.S_IXUSR, "postBuild must be executable (git mode 755)"


def _copy_of_the_repository(target: Path) -> Path:
    skip = shutil.ignore_patterns(".git", ".venv", "_build", ".hypothesis", ".pytest_cache", "__pycache__",
                                  "*.egg-info", ".ipynb_checkpoints", "node_modules")
    shutil.copytree(ROOT, target, ignore=skip)
    return target


def test_postbuild_installs_d2lcore_alone_fetches_the_data_and_rewrites_the_notebooks(tmp_path):
    """Run postBuild as repo2docker does (./postBuild in the repository) on a copy, in a fresh
    virtual environment that sees this one's packages (torch, ...) but has no d2lcore of its own.
    Offline: pip may use no index, and builds with the setuptools already installed here."""
    repo = _copy_of_the_repository(tmp_path / "repo")
    env = tmp_path / "env"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(env)], check=True)
    env_site = Path(sysconfig.get_path("purelib", vars={"base": str(env), "platbase": str(env)}))
    (env_site / "book-environment.pth").write_text(sysconfig.get_path("purelib") + "\n")
    # pip (and setuptools, to build d2lcore) come from here: a `pip` command as environments have.
    (env / "bin" / "pip").write_text('#!/bin/sh\nexec "$(dirname "$0")/python" -m pip "$@"\n')
    (env / "bin" / "pip").chmod(0o755)
    variables = {**{k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "D2LCORE_DATA", "VIRTUAL_ENV")},
                 "PATH": f"{env / 'bin'}{os.pathsep}{os.environ['PATH']}", "HOME": str(tmp_path / "home"),
                 "XDG_CACHE_HOME": str(tmp_path / "cache"), "PIP_NO_INDEX": "1",
                 "PIP_NO_BUILD_ISOLATION": "0", "PIP_NO_CACHE_DIR": "1"}
    run = subprocess.run(["./postBuild"], cwd=repo, env=variables, capture_output=True, text=True)
    assert run.returncode == 0, f"postBuild failed:\n{run.stdout}\n{run.stderr}"

    # d2lcore is installed, editable from the repository, and pip left its dependencies alone.
    where = subprocess.run([str(env / "bin" / "python"), "-c", "import d2lcore; print(d2lcore.__file__)"],
                           cwd=tmp_path, env=variables, capture_output=True, text=True, check=True)
    assert Path(where.stdout.strip()).is_relative_to(repo), where.stdout
    assert "Successfully installed d2lcore" in run.stdout, run.stdout
    dependencies = [re.match(r"[\w-]+", d).group() for d in
                    tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]]
    considered = [d for d in dependencies if re.search(rf"^Requirement already satisfied: {d}\b", run.stdout, re.M)]
    assert not considered, f"pip resolved {considered}: without --no-deps it could reinstall torch"
    # FashionMNIST was found (or downloaded) and verified.
    assert "FashionMNIST ready:" in run.stdout, run.stdout
    # The image's notebooks link to the published book; no role is left in any markdown cell.
    for path in toc_notebooks():
        copy = json.loads((repo / path.relative_to(ROOT)).read_text())
        for cell_id, text in markdown(copy):
            assert not ANY_ROLE.search(text), f"{path.name} cell {cell_id}: a role is left in the image"
    assert BOOK.url in (repo / "chapters/03_softmax_regression/cross_entropy.ipynb").read_text()
    assert f"now link to {BOOK.url}" in run.stdout, run.stdout
