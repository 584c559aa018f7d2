"""Bibliography labels in the author-year form the text cites with.

The text cites with ``bibtex_reference_style: author_year`` ("Xiao et al., 2017"), but the
bibliography page labelled its entries with pybtex's default alpha keys ("[XRV17]"), which a
reader cannot match to the citation. This extension registers a pybtex formatting style,
``author_year_labels``, that formats entries like pybtex's ``unsrt`` style, sorts them by
author and year, and labels each one "Xiao et al., 2017" ("Huber, 1964"; "Kullback and
Leibler, 1951"), with a, b, ... appended when two entries would share a label. _config.yml
selects it with ``bibtex_default_style``.
"""
from __future__ import annotations

import re
from collections import Counter

from pybtex.plugin import register_plugin
from pybtex.style.formatting.unsrt import Style as UnsrtStyle
from pybtex.style.labels import BaseLabelStyle

STYLE = "author_year_labels"


def _last_name(person) -> str:
    return re.sub(r"[{}]", "", " ".join(person.prelast_names + person.last_names))


def author_year(entry) -> str:
    """'Xiao et al., 2017' for one pybtex entry: one, two, or first author et al."""
    people = entry.persons.get("author") or entry.persons.get("editor") or []
    year = entry.fields.get("year", "n.d.")
    if not people:
        who = re.sub(r"[{}]", "", entry.fields.get("organization") or entry.fields.get("title", entry.key))
    elif len(people) == 1:
        who = _last_name(people[0])
    elif len(people) == 2:
        who = f"{_last_name(people[0])} and {_last_name(people[1])}"
    else:
        who = f"{_last_name(people[0])} et al."
    return f"{who}, {year}"


class AuthorYearLabels(BaseLabelStyle):
    def format_labels(self, sorted_entries):
        entries = list(sorted_entries)
        labels = [author_year(e) for e in entries]
        counts, seen = Counter(labels), Counter()
        for label in labels:
            if counts[label] > 1:
                seen[label] += 1
                label = label + "abcdefghijklmnopqrstuvwxyz"[seen[label] - 1]
            yield label


class AuthorYearStyle(UnsrtStyle):
    default_label_style = AuthorYearLabels
    default_sorting_style = "author_year_title"


def setup(app):
    register_plugin("pybtex.style.labels", STYLE, AuthorYearLabels)
    register_plugin("pybtex.style.formatting", STYLE, AuthorYearStyle)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
