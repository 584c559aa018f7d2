"""Every module d2lcore imports is a declared dependency: `pip install -e .` is enough to use it.

Read from the source (ast), so an import added anywhere in the package without its line in
`[project].dependencies` fails here, before a reader meets the ImportError.
"""
import ast
import importlib.metadata
import sys
import tomllib
from pathlib import Path

from packaging.requirements import Requirement

ROOT = Path(__file__).resolve().parent.parent
# Imported only inside `try: ... except ImportError`, so the package works without them.
OPTIONAL = {"IPython"}


def imported_top_level_modules() -> dict[str, set[str]]:
    """module name -> the d2lcore files that import it."""
    found: dict[str, set[str]] = {}
    for path in sorted((ROOT / "d2lcore").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            else:
                continue
            for name in names:
                found.setdefault(name.split(".")[0], set()).add(str(path.relative_to(ROOT)))
    return found


def test_every_third_party_import_is_a_declared_dependency():
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    declared = {Requirement(r).name.lower() for r in pyproject["project"]["dependencies"]}
    distributions = importlib.metadata.packages_distributions()
    missing = []
    for module, files in imported_top_level_modules().items():
        if module in sys.stdlib_module_names or module in {"d2lcore", "__future__"} or module in OPTIONAL:
            continue
        names = {d.lower() for d in distributions.get(module, [module])}
        if not names & declared:
            missing.append(f"{module} (imported by {', '.join(sorted(files))}; distribution {sorted(names)})")
    assert not missing, "add to [project].dependencies in pyproject.toml: " + "; ".join(missing)
