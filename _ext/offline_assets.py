"""Serve MathJax, RequireJS and the ipywidgets HTML manager from the book itself.

Jupyter Book 1 pages load these three from public CDNs when a reader opens them; offline, or
where the CDNs are blocked, math stays raw LaTeX and widgets stay blank. At the start of each
build this extension fetches pinned releases from the npm registry (once; they are cached in
``_build/vendor``), checks each tarball against its pinned SHA-512, unpacks only the files the
pages need, and points ``mathjax_path`` and myst-nb's ``nb_ipywidgets_js`` at them. Sphinx
copies them to ``<html>/vendor/`` as extra files: outside ``_static/``, whose every .js and .css
Jupyter Book would inject into every page.

If the registry cannot be reached the build says so and keeps the CDN URLs. A tarball whose
checksum differs from the pin is never used: the build stops and says what to do.
"""
from __future__ import annotations

import base64
import hashlib
import io
import os
import shutil
import tarfile
import tempfile
import urllib.request
from pathlib import Path, PurePosixPath

from sphinx.errors import ExtensionError
from sphinx.util import logging

logger = logging.getLogger(__name__)

REGISTRY = os.environ.get("D2LCORE_NPM_REGISTRY", "https://registry.npmjs.org")

# name, version, SHA-512 of the tarball (npm's "integrity"), the part of the package to keep,
# and the folder under vendor/ it goes to.
PACKAGES = [
    ("mathjax", "3.2.2",
     "sha512-Bt+SSVU8eBG27zChVewOicYs7Xsdt40qm4+UpHyX7k0/O9NliPc+x77k1/FEsPsjKPZGJvtRZM1vO+geW0OhGw==",
     "es5", "mathjax"),
    ("requirejs", "2.3.8",
     "sha512-7/cTSLOdYkNBNJcDMWf+luFvMriVm7eYxp4BcFCsAX0wF421Vyce5SXP17c+Jd5otXKGNehIonFlyQXSowL6Mw==",
     "require.js", "requirejs"),
    ("@jupyter-widgets/html-manager", "1.0.15",
     "sha512-5thBIV6ymNgmPVOHvzx+gGy8ZSKmSazhtGw4/c4xJDVzRhG9PTeQsRjF3FUTopvFi//SABeNz1yp47bCrJ3CQA==",
     "dist", "jupyter-widgets/html-manager/dist"),
]

# Paths as the pages see them. Sphinx prefixes local script paths with "_static/", hence "../".
MATHJAX = "../vendor/mathjax/tex-mml-chtml.js"
REQUIRE = "../vendor/requirejs/require.js"
WIDGETS = "../vendor/jupyter-widgets/html-manager/dist/embed-amd.js"
# The widget manager's CSS finds its icon fonts relative to the URL of whichever of its AMD
# modules ("@jupyter-widgets/...") loads first, which RequireJS resolves against the page. Map
# "@jupyter-widgets" to our copy, whatever the depth of the page; the fonts sit both in the
# package's dist/ and one level up, so either module's URL finds them.
REQUIRE_PATHS = ("(function () { var s = document.querySelector('script[src*=\"vendor/requirejs/require.js\"]');"
                 " if (s && window.require) { require.config({paths: {'@jupyter-widgets':"
                 " s.src.replace(/requirejs\\/require\\.js.*$/, 'jupyter-widgets')}}); } })();")
FONTS = (".woff2", ".woff", ".ttf", ".eot", ".svg")


class IntegrityError(Exception):
    pass


def tarball_url(name: str, version: str) -> str:
    return f"{REGISTRY}/{name}/-/{name.split('/')[-1]}-{version}.tgz"


def check_integrity(data: bytes, integrity: str, what: str) -> None:
    algorithm, _, expected = integrity.partition("-")
    actual = base64.b64encode(hashlib.new(algorithm, data).digest()).decode()
    if actual != expected:
        raise IntegrityError(f"{what}: {algorithm} of the download is {actual}, the pin says {expected}")


def unpack(data: bytes, keep: str, target: Path) -> None:
    """Extract ``package/<keep>`` (a file or a folder) into ``target``, refusing odd paths."""
    prefix = PurePosixPath("package") / keep
    staging = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}-"))
    try:
        with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as archive:
            for member in archive.getmembers():
                path = PurePosixPath(member.name)
                if not member.isfile() or ".." in path.parts or not (path == prefix or prefix in path.parents):
                    continue
                relative = path.name if path == prefix else path.relative_to(prefix)
                out = staging / relative
                out.parent.mkdir(parents=True, exist_ok=True)
                out.write_bytes(archive.extractfile(member).read())
        if not any(staging.iterdir()):
            raise IntegrityError(f"the package holds no {keep}")
        shutil.rmtree(target, ignore_errors=True)
        staging.rename(target)  # atomic: a half-unpacked folder is never mistaken for a whole one
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def ensure(cache: Path) -> bool:
    """Make every package available under ``cache/vendor``; False if the registry is unreachable."""
    vendor = cache / "vendor"
    vendor.mkdir(parents=True, exist_ok=True)
    for name, version, integrity, keep, folder in PACKAGES:
        target = vendor / folder
        stamp = target / ".version"
        if stamp.exists() and stamp.read_text() == f"{name}@{version} {integrity}":
            continue
        url = tarball_url(name, version)
        try:
            with urllib.request.urlopen(url, timeout=60) as response:
                data = response.read()
        except OSError as error:
            logger.info(f"[offline-assets] cannot reach {url} ({error}); the pages will load MathJax and the "
                        f"widget scripts from public CDNs and need a network to show math and widgets")
            return False
        try:
            check_integrity(data, integrity, f"{name}@{version} from {url}")
        except IntegrityError as error:
            raise ExtensionError(f"{error}. The download was not used. Retry the build; if it persists, the "
                                 f"registry serves a different file than the one pinned in {__file__}.") from None
        target.parent.mkdir(parents=True, exist_ok=True)
        unpack(data, keep, target)
        if name == "@jupyter-widgets/html-manager":
            for font in (f for f in target.iterdir() if f.suffix in FONTS):
                shutil.copyfile(font, vendor / "jupyter-widgets" / font.name)
        stamp.write_text(f"{name}@{version} {integrity}")
        logger.info(f"[offline-assets] {name}@{version} verified and unpacked into {target}")
    return True


def use_local_assets(app, config) -> None:
    cache = Path(app.srcdir) / "_build" / "vendor"
    if not ensure(cache):
        return
    config.mathjax_path = MATHJAX
    config.nb_ipywidgets_js = {REQUIRE: {}, "": {"body": REQUIRE_PATHS},
                               WIDGETS: {"data-jupyter-widgets-cdn": "https://cdn.jsdelivr.net/npm/"}}
    config.html_extra_path = [*config.html_extra_path, str(cache)]


def setup(app):
    app.connect("config-inited", use_local_assets, priority=100)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
