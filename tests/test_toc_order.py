"""tests/toc.py --heaviest-first: the same notebooks, the slowest (by the recorded nbval seconds) first."""
import json

import toc


def test_heaviest_first_keeps_every_notebook_and_puts_slow_and_unknown_ones_first(tmp_path, monkeypatch):
    paths = toc.toc_notebooks()
    names = [str(p.relative_to(toc.ROOT)) for p in paths]
    seconds = {name: float(i) for i, name in enumerate(names[1:])}  # the first one is not recorded
    (tmp_path / "seconds.json").write_text(json.dumps(seconds))
    monkeypatch.setattr(toc, "SECONDS", tmp_path / "seconds.json")
    ordered = [str(p.relative_to(toc.ROOT)) for p in toc.heaviest_first(paths)]
    assert sorted(ordered) == sorted(names)
    assert ordered[0] == names[0]  # unknown: counted as slow as the slowest
    assert ordered[1:] == sorted(names[1:], key=lambda n: -seconds[n])


def test_the_committed_seconds_name_only_notebooks_of_the_toc():
    recorded = json.loads(toc.SECONDS.read_text())
    assert set(recorded) <= {str(p.relative_to(toc.ROOT)) for p in toc.toc_notebooks()}
