"""Small Sphinx fixes for the book's HTML.

sphinx-thebe registers its inline configuration script once per build pass, and Jupyter Book
runs two, so every page declared ``const THEBE_JS_URL`` twice and the second declaration threw a
SyntaxError in the reader's console. Identical scripts are now emitted once per page.
"""
from __future__ import annotations


def _script_key(script) -> tuple:
    attributes = getattr(script, "attributes", {}) or {}
    # the same inline script comes back with filename None from one pass and "" from the other
    return (str(getattr(script, "filename", script) or ""), tuple(sorted((k, str(v)) for k, v in attributes.items())))


def drop_duplicate_scripts(app, pagename, templatename, context, doctree) -> None:
    seen, unique = set(), []
    for script in context.get("script_files", []):
        key = _script_key(script)
        if key not in seen:
            seen.add(key)
            unique.append(script)
    context["script_files"][:] = unique


def setup(app):
    app.connect("html-page-context", drop_duplicate_scripts, priority=900)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
