"""Rewrite the book's cross-document MyST roles as plain Markdown links, for Binder.

jupyterlab-myst renders each notebook on its own, so the roles that point outside it break:
a {term} becomes a link to "#" (the glossary is another page), a {doc} shows its target as
written ("../explorers") and links to that path without an extension, a file that does not exist,
and a {cite} shows a warning sign and the BibTeX key (the notebook has no bibliography). Inside
math a role is not parsed at all and shows raw. The Binder image runs this script from
``postBuild`` on its own copy of the notebooks; the repository's notebooks keep their roles,
which the HTML book resolves. Every link goes to the published book:

    {term}`words <Term>`      ->  [words](BOOK/glossary.html#term-Term)
    {doc}`path`               ->  [title of that page](BOOK/path.html)
    {doc}`words <path>`       ->  [words](BOOK/path.html)
    {cite}`key1,key2`         ->  ([Author 1948](BOOK/bibliography.html); [A and B 2006](...))

Inside math a link cannot live, so there a role becomes its words alone. A role that does not
resolve (unknown term, missing page, unknown key) is an error that names the notebook and the role.

    python tools/myst_for_binder.py [NOTEBOOK ...]   rewrite in place (default: chapters/**/*.ipynb)
"""
from __future__ import annotations

import json
import posixpath
import re
import sys
import tomllib
import unicodedata
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
ROLE = re.compile(r"\{(term|doc|cite)\}`([^`]+)`")
LABELLED = re.compile(r"^(.+?)\s*<([^<>]+)>$")          # "words <target>"
MATH = re.compile(r"\$\$.+?\$\$|(?<![\\$])\$(?!\$)(?:\\.|[^$\\])+?\$", re.S)


class UnresolvedRole(ValueError):
    """Roles that name no glossary term, no page or no bibliography entry."""


@dataclass(frozen=True)
class Book:
    """What the roles point at: the published book's address, its glossary, pages and references."""

    root: Path
    url: str                     # the published book, ending in "/"
    terms: dict[str, str]        # lower-case term -> the term as the glossary spells it
    citations: dict[str, str]    # BibTeX key -> "Author Year"

    @classmethod
    def load(cls, root: Path = ROOT) -> "Book":
        return cls(root, book_url(root), glossary_terms(root / "glossary.md"),
                   citations(root / "references.bib"))

    def term_url(self, term: str) -> str | None:
        spelled = self.terms.get(term.strip().lower())
        return spelled and f"{self.url}glossary.html#{term_anchor(spelled)}"

    def page(self, notebook: Path, target: str) -> Path | None:
        """The source file a {doc} target names: relative to the notebook, or to the root if it
        starts with "/", as Sphinx reads it."""
        base = "" if target.startswith("/") else notebook.parent.relative_to(self.root).as_posix()
        stem = posixpath.normpath(posixpath.join(base, target.lstrip("/")))
        for suffix in (".ipynb", ".md"):
            path = self.root / f"{stem}{suffix}"
            if not stem.startswith("..") and path.is_file():
                return path
        return None

    def page_url(self, page: Path) -> str:
        return f"{self.url}{page.relative_to(self.root).with_suffix('.html').as_posix()}"


def book_url(root: Path) -> str:
    """The published book's address: pyproject.toml's [project.urls] Documentation."""
    url = tomllib.loads((root / "pyproject.toml").read_text())["project"]["urls"]["Documentation"]
    return url.rstrip("/") + "/"


def glossary_terms(path: Path) -> dict[str, str]:
    """Terms of the ```{glossary} block: the unindented lines (definitions are indented).
    Sphinx matches {term} targets case-insensitively."""
    block = re.search(r"^```\{glossary\}\n(.*?)^```", path.read_text(), re.S | re.M)
    if block is None:
        raise ValueError(f"{path}: no ```{{glossary}} block")
    lines = [line for line in block.group(1).splitlines() if line.strip() and not line[0].isspace()]
    return {line.strip().lower(): line.strip() for line in lines}


def term_anchor(term: str) -> str:
    """The id Sphinx gives a glossary term (sphinx.util.nodes.make_id with prefix "term")."""
    ascii_term = unicodedata.normalize("NFKD", f"term-{term}").encode("ascii", "ignore").decode()
    anchor = re.sub(r"[^a-zA-Z0-9._]+", "-", " ".join(ascii_term.split()))
    return re.sub(r"^[-0-9._]+|-+$", "", anchor)


def page_title(path: Path) -> str | None:
    """The text of a page's first "# " heading (in a notebook, of its markdown cells)."""
    if path.suffix == ".ipynb":
        cells = json.loads(path.read_text())["cells"]
        text = "\n".join("".join(c["source"]) for c in cells if c["cell_type"] == "markdown")
    else:
        text = path.read_text()
    heading = re.search(r"^# (.+)$", text, re.M)
    return heading and heading.group(1).strip()


# --- references.bib ------------------------------------------------------------------------

_ACCENTS = {"'": "\u0301", '"': "\u0308", "`": "\u0300", "^": "\u0302", "~": "\u0303",
            "=": "\u0304", ".": "\u0307", "c": "\u0327", "v": "\u030c", "u": "\u0306",
            "H": "\u030b", "k": "\u0328"}
_ACCENT = re.compile(r"\\([\'\"`^~=.]|[cvuHk](?=[\s{]))\s*\{?([A-Za-z])\}?")
_FIELD = re.compile(r"(\w+)\s*=\s*(\{(?:[^{}]|\{(?:[^{}]|\{[^{}]*\})*\})*\}|\"[^\"]*\"|\d+)")


def latex_to_text(value: str) -> str:
    """BibTeX's LaTeX accents as Unicode: St{\\'e}fan -> Stéfan, {\\c{c}} -> ç, {\\i} -> ı."""
    value = value.replace("\\i", "ı")
    value = _ACCENT.sub(lambda m: m.group(2) + _ACCENTS[m.group(1)], value)
    return unicodedata.normalize("NFC", value.replace("{", "").replace("}", ""))


def bib_entries(path: Path) -> dict[str, dict[str, str]]:
    """key -> {field: value} for every entry, values without their outer braces or quotes."""
    entries = {}
    for chunk in re.split(r"^@", path.read_text(), flags=re.M)[1:]:
        head = re.match(r"(\w+)\s*\{\s*([^,\s]+)\s*,", chunk)
        if head is None or head.group(1).lower() in ("comment", "string", "preamble"):
            continue
        fields = {m.group(1).lower(): m.group(2)[1:-1] if m.group(2)[0] in '{"' else m.group(2)
                  for m in _FIELD.finditer(chunk, head.end())}
        entries[head.group(2)] = fields
    return entries


def last_name(person: str) -> str:
    """The family name of "van der Walt, Stéfan" or of "Claude Shannon"; a braced name, as
    BibTeX writes an organisation ("{Hugging Face}"), is kept whole."""
    person = person.strip()
    if person.startswith("{") and person.endswith("}"):
        return person[1:-1].strip()
    return person.split(",")[0].strip() if "," in person else person.split()[-1]


def citations(path: Path) -> dict[str, str]:
    """key -> "Author Year", "A and B Year" or "A et al. Year", as the book's author-year style."""
    cited = {}
    for key, fields in bib_entries(path).items():
        people = fields.get("author") or fields.get("editor")
        if not people or "year" not in fields:
            continue
        names = [latex_to_text(last_name(p)) for p in re.split(r"\s+and\s+", people)]
        who = names[0] if len(names) == 1 else " and ".join(names) if len(names) == 2 \
            else f"{names[0]} et al."
        cited[key] = f"{who} {fields['year']}"
    return cited


# --- the rewrite ---------------------------------------------------------------------------

def _link(words: str, url: str) -> str:
    return "[{}]({})".format(words.replace("[", r"\[").replace("]", r"\]"), url)


def rewrite_markdown(text: str, notebook: Path, book: Book) -> str:
    """The markdown of one cell with every {term}, {doc} and {cite} role made plain Markdown."""
    math = [m.span() for m in MATH.finditer(text)]
    unresolved = []

    def replace(match: re.Match) -> str:
        role, body = match.groups()
        in_math = any(start <= match.start() < end for start, end in math)
        labelled = LABELLED.match(body)
        words, target = labelled.groups() if labelled else (None, body.strip())
        if role == "term":
            url = book.term_url(target)
            words = words or target
        elif role == "doc":
            page = book.page(notebook, target)
            url = page and book.page_url(page)
            words = words or (page and page_title(page))
        else:
            keys = [key.strip() for key in body.split(",")]
            found = [book.citations.get(key) for key in keys]
            if None in found:
                unresolved.append(match.group(0))
                return match.group(0)
            url = f"{book.url}bibliography.html"
            return "; ".join(found) if in_math else \
                "(" + "; ".join(_link(cite, url) for cite in found) + ")"
        if not url or not words:
            unresolved.append(match.group(0))
            return match.group(0)
        return words if in_math else _link(words, url)

    result = ROLE.sub(replace, text)
    if unresolved:
        raise UnresolvedRole(f"{notebook}: " + ", ".join(unresolved))
    return result


def rewrite_notebook(notebook: dict, path: Path, book: Book) -> int:
    """Rewrite the markdown cells of a notebook (as read from ``path``); return how many roles
    were replaced. Only markdown sources change: cell ids, metadata and nbformat stay as they were."""
    count = 0
    for cell in notebook["cells"]:
        if cell["cell_type"] == "markdown":
            source = "".join(cell["source"])
            count += len(ROLE.findall(source))
            cell["source"] = rewrite_markdown(source, path, book).splitlines(keepends=True)
    return count


def rewrite_file(path: Path, book: Book) -> int:
    notebook = json.loads(path.read_text())
    count = rewrite_notebook(notebook, path, book)
    if count:
        path.write_text(json.dumps(notebook, indent=1, ensure_ascii=False) + "\n")
    return count


def main(argv: list[str]) -> int:
    book = Book.load()
    paths = [Path(p).resolve() for p in argv] or sorted(
        p for p in (book.root / "chapters").rglob("*.ipynb") if ".ipynb_checkpoints" not in p.parts)
    errors, total = [], 0
    for path in paths:
        try:
            total += rewrite_file(path, book)
        except UnresolvedRole as error:
            errors.append(str(error))
    if errors:
        print("Unresolved MyST roles (fix the notebook, glossary.md or references.bib):",
              *errors, sep="\n  ", file=sys.stderr)
        return 1
    print(f"{total} MyST roles in {len(paths)} notebooks now link to {book.url}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
