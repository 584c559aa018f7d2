"""Small Sphinx fixes for the book's HTML, each one a console error a reader would otherwise get.

- sphinx-thebe registers its inline configuration script once per build pass, and Jupyter Book
  runs two, so every page declared ``const THEBE_JS_URL`` twice and the second declaration threw
  a SyntaxError. Identical scripts are now emitted once per page.
- The theme's colour-mode switch starts from ``default_mode`` in the template context, which
  Jupyter Book leaves empty, so a first visit logged "Got invalid theme mode". It is now
  "auto" (follow the system).
- ``_static/d2l_book.css`` wraps printed output at the text column, so no output line is
  clipped behind a scroll bar.
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


def default_colour_mode(app, config) -> None:
    # pydata-sphinx-theme's layout reads it from the template context, not the theme options
    context = dict(config.html_context or {})
    context.setdefault("default_mode", "auto")
    config.html_context = context


def setup(app):
    app.add_css_file("d2l_book.css")
    app.connect("config-inited", default_colour_mode)
    app.connect("html-page-context", drop_duplicate_scripts, priority=900)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
