"""Live-update and static-build times of every explorer, against a naive redraw in the same process.

For each explorer in ``d2lcore.explore``:

- update:     median milliseconds for one live update (``LiveView.set``: compute, draw into the
              reused axes, one Agg draw, PNG) while the main control steps through its frames;
- worst:      the slowest control: for every control, the median update when it alternates
              between two values, and the largest of those medians;
- naive:      the same updates drawn the obvious way (a new figure, new axes and ``savefig``
              every time), the baseline the toolkit's reuse is measured against;
- static:     seconds to build the static HTML view (every frame of the main control, palette PNGs),
              and its size.

Targets (issue 3): every live update under 100 ms on a 2-core machine, every static build under
10 s. Run: ``python benchmarks/explorers.py [--repeats 10] [--only name ...]``.
"""
from __future__ import annotations

import argparse
import io
import statistics
import time

import matplotlib
import torch

from d2lcore import explore
from d2lcore.explore import toolkit


def median_ms(action, values, repeats: int) -> float:
    times = []
    for i in range(repeats):
        value = values[i % len(values)]
        start = time.perf_counter()
        action(value)
        times.append(time.perf_counter() - start)
    return 1e3 * statistics.median(times)


def two_values(control, current):
    """Two states of a control that differ from each other, for alternating updates."""
    frames = control.frames(5)
    others = [v for v in frames if v != current] or frames
    return [others[0], others[-1]] if len(others) > 1 else [others[0], current]


def naive_update(explorer, params):
    with matplotlib.rc_context(toolkit.STYLE):
        fig = toolkit.new_figure(explorer)
        explorer.draw(fig, explorer.compute(**params))
        fig.savefig(io.BytesIO(), format="png", dpi=fig.dpi)


def measure(name: str, repeats: int) -> dict:
    module = getattr(explore, name)
    explorer = module.EXPLORER
    main = explorer.control(explorer.frame_control)
    frames = main.frames(explorer.frame_count)
    view = toolkit.LiveView(explorer)
    defaults = dict(view.params)
    update = median_ms(lambda v: view.set(**{main.name: v}), frames, repeats)
    naive = median_ms(lambda v: naive_update(explorer, {**defaults, main.name: v}), frames, repeats)
    worst, worst_name = 0.0, main.name
    for control in explorer.controls:
        view = toolkit.LiveView(explorer)
        values = two_values(control, view.params[control.name])
        try:
            ms = median_ms(lambda v: view.set(**{control.name: v}), values, max(4, repeats // 2))
        except ValueError:  # a value this control cannot take with the others at their defaults
            continue
        if ms > worst:
            worst, worst_name = ms, control.name
    start = time.perf_counter()
    html = toolkit.static_html(explorer)
    static_s = time.perf_counter() - start
    return {"name": name, "update": update, "worst": worst, "worst_control": worst_name, "naive": naive,
            "static": static_s, "frames": html.count('"img":'), "kb": len(html) / 1024}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--only", nargs="*", help="explorer module names (default: all)")
    args = parser.parse_args()
    torch.set_num_threads(2)
    names = args.only or [n for n in explore.__all__ if n != "toolkit"]
    print(f"{'explorer':30s} {'update ms':>9s} {'worst ms':>9s} {'(control)':18s} {'naive ms':>9s} "
          f"{'ratio':>6s} {'static s':>8s} {'frames':>6s} {'KB':>6s}")
    for name in names:
        r = measure(name, args.repeats)
        flag = "" if r["worst"] < 100 and r["static"] < 10 else "  <- over target"
        print(f"{r['name']:30s} {r['update']:9.1f} {r['worst']:9.1f} {r['worst_control']:18.18s} {r['naive']:9.1f} "
              f"{r['update'] / r['naive']:6.2f} {r['static']:8.2f} {r['frames']:6d} {r['kb']:6.0f}{flag}")


if __name__ == "__main__":
    main()
