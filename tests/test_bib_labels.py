"""The bibliography page labels its entries the way the text cites them ("Xiao et al., 2017").

The text uses sphinxcontrib-bibtex's author_year reference style; the list used to carry
pybtex's alpha labels ("[XRV17]"), which a reader cannot match to a citation. _ext/bib_labels.py
registers an author-year label style and _config.yml selects it.
"""
import re
import sys

import yaml
from pybtex.database import parse_file
from pybtex.plugin import find_plugin

from toc import ROOT

sys.path.insert(0, str(ROOT / "_ext"))
import bib_labels  # noqa: E402


def labels():
    bib_labels.setup(None)
    style = find_plugin("pybtex.style.formatting", bib_labels.STYLE)()
    database = parse_file(str(ROOT / "references.bib"))
    return {entry.key: entry.label for entry in style.format_bibliography(database)}, database


def test_the_book_selects_the_author_year_labels():
    config = yaml.safe_load((ROOT / "_config.yml").read_text())
    sphinx = config["sphinx"]
    assert "bib_labels" in sphinx["local_extensions"]
    assert sphinx["config"]["bibtex_default_style"] == bib_labels.STYLE
    assert sphinx["config"]["bibtex_reference_style"] == "author_year"


def test_every_label_is_author_and_year_and_unique():
    found, database = labels()
    assert len(set(found.values())) == len(found)
    for key, label in found.items():
        year = database.entries[key].fields["year"]
        assert re.fullmatch(r"[^\[\]]+, " + year + "[a-z]?", label), (key, label)


def test_examples():
    found, _ = labels()
    assert found["xiao2017"] == "Xiao et al., 2017"
    assert found["huber1964"] == "Huber, 1964"
    assert found["kullback1951"] == "Kullback and Leibler, 1951"
    assert found["prince2023"] == "Prince, 2023"
