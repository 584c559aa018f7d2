"""What every explorer shares: controls, the live ipywidgets view, the static HTML view.

An explorer is a pure ``compute(**params) -> result`` plus ``draw(fig, result)`` and
``readouts(result)``. From those three the toolkit builds

- a live view for Jupyter, JupyterLab, Binder and Colab: ipywidgets controls, one figure
  re-rendered in place into an ``Image`` widget (no flicker, no growing output), and readouts;
- a static view for the HTML book: frames precomputed over the main control, behind a range
  input that swaps them in the browser with a few lines of inline JavaScript (no kernel, no CDN).

``show(explorer, ...)`` picks the static view when ``$D2LCORE_STATIC`` is set (``make book``
sets it) and the live view otherwise.
"""
from __future__ import annotations

import base64
import html
import io
import json
import os
import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib import ticker
from matplotlib.figure import Figure

from d2lcore.plot import STYLE
from d2lcore.rng import cpu_seeded, generator  # noqa: F401  the explorers' only sources of randomness

STATIC_ENV = "D2LCORE_STATIC"
# The book's style, tuned for redrawing many times a second. Titles sit at a fixed height
# (placing them around tick labels costs a tenth of a redraw; the panels leave room anyway) and
# glyphs are not hinted (FreeType's auto-hinter costs a sixth; at this size it changes nothing
# a reader can see).
EXPLORER_STYLE = {**STYLE, "axes.titley": 1.02, "text.hinting": "none"}
LIVE_NOTE = "This is a static copy: move the slider to step through precomputed frames. " \
            "The full version, with every control, runs live in Binder (rocket button at the top of the page)."


# ---------------------------------------------------------------------------------------------
# Controls: each knows its range, so neither a widget nor a caller can reach an invalid state.

@dataclass(frozen=True)
class Slider:
    name: str
    label: str
    min: float
    max: float
    step: float
    default: float
    integer: bool = False
    at_most: tuple[str, int] | None = None  # (other control, offset): value <= other + offset
    used_from: tuple[str, int] | None = None  # (other control, n): matters only when other >= n

    def check(self, value) -> float:
        if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)) \
                or not np.isfinite(value) or not self.min <= value <= self.max:
            raise ValueError(f"{self.name} must be a number in [{self.min}, {self.max}], got {value!r}")
        if self.integer and int(value) != value:
            raise ValueError(f"{self.name} must be a whole number in [{self.min}, {self.max}], got {value!r}")
        return int(value) if self.integer else float(value)

    def frames(self, count: int) -> list:
        values = np.linspace(self.min, self.max, count)
        values = np.round(values / self.step) * self.step  # land on the widget's own grid
        values = np.clip(values, self.min, self.max)
        out = sorted({int(v) if self.integer else float(round(v, 10)) for v in values})
        return out

    def widget(self):
        import ipywidgets as w
        cls = w.IntSlider if self.integer else w.FloatSlider
        return cls(value=self.default, min=self.min, max=self.max, step=self.step, description=self.label,
                   continuous_update=True, style={"description_width": "initial"},
                   layout=w.Layout(width="95%"))


@dataclass(frozen=True)
class Choice:
    name: str
    label: str
    options: tuple
    default: Any

    def check(self, value):
        if value not in self.options:
            raise ValueError(f"{self.name} must be one of {list(self.options)}, got {value!r}")
        return value

    def frames(self, count: int) -> list:
        return list(self.options)

    def widget(self):
        import ipywidgets as w
        return w.ToggleButtons(options=list(self.options), value=self.default, description=self.label,
                               style={"description_width": "initial", "button_width": "auto"})


@dataclass(frozen=True)
class Toggle:
    name: str
    label: str
    default: bool

    def check(self, value) -> bool:
        if not isinstance(value, (bool, np.bool_)):
            raise ValueError(f"{self.name} must be True or False, got {value!r}")
        return bool(value)

    def frames(self, count: int) -> list:
        return [False, True]

    def widget(self):
        import ipywidgets as w
        return w.Checkbox(value=self.default, description=self.label, indent=False)


Control = Slider | Choice | Toggle


def validate(controls: tuple, params: dict) -> dict:
    """Defaults filled in, every value checked against its control; unknown names rejected."""
    known = {c.name: c for c in controls}
    unknown = set(params) - set(known)
    if unknown:
        raise TypeError(f"unknown parameter(s) {sorted(unknown)}; this explorer takes {sorted(known)}")
    values = {name: c.check(params.get(name, c.default)) for name, c in known.items()}
    for c in controls:
        if getattr(c, "at_most", None):
            other, offset = c.at_most
            if values[c.name] > values[other] + offset:
                raise ValueError(f"{c.name} must be at most {other}{offset:+d} = {values[other] + offset}, "
                                 f"got {values[c.name]}")
    return values


def clamp(controls: tuple, params: dict, moved: set[str]) -> dict:
    """Pull every control that was not ``moved`` inside the bound another control sets for it,
    as its widget does when the bounding slider moves."""
    params = dict(params)
    for c in controls:
        if getattr(c, "at_most", None) and c.name not in moved:
            other, offset = c.at_most
            params[c.name] = min(params[c.name], params[other] + offset)
    return params


# ---------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Explorer:
    """The description of one explorer; see the module docstring."""

    title: str
    controls: tuple
    compute: Callable[..., Any]
    draw: Callable[[Figure, Any], None]
    readouts: Callable[[Any], dict[str, str]]
    frame_control: str
    figsize: tuple[float, float] = (9.0, 3.4)
    frame_count: int = 21
    extra: dict = field(default_factory=dict)
    catalogue_id: str = field(default="", init=False)

    def __post_init__(self):
        # A module may write its catalogue ID first ("W4 · Softmax ..."): readers see the name
        # only, the ID stays on the explorer for tests and the gallery's bookkeeping.
        found = re.match(r"\s*(W\d+)\s*[·:\-–—]\s*", self.title)
        if found:
            object.__setattr__(self, "catalogue_id", found.group(1))
            object.__setattr__(self, "title", self.title[found.end():])

    def control(self, name: str):
        return next(c for c in self.controls if c.name == name)


def new_figure(explorer: Explorer) -> Figure:
    """A figure outside pyplot: nothing is shown or kept alive behind the view's back."""
    import matplotlib
    with matplotlib.rc_context(EXPLORER_STYLE):
        fig = Figure(figsize=explorer.figsize, dpi=80)
    FigureCanvasAgg(fig)
    return fig


def panels(fig: Figure, ncols: int, nrows: int = 1, **grid):
    """Axes with fixed margins (``tight_layout`` would cost a full extra draw per update).

    On a figure that already has this layout the same axes come back emptied: building axes
    and their ticks anew costs about a third of a live update, emptying them almost nothing."""
    spec = {"left": 0.07, "right": 0.98, "bottom": 0.17, "top": 0.87, "wspace": 0.28, "hspace": 0.45, **grid}
    key = (ncols, nrows, tuple(sorted(spec.items())))
    cached = getattr(fig, "_d2l_panels", None)
    if cached is not None and cached[0] == key and all(ax.figure is fig for ax in cached[1]):
        for ax in fig.axes:
            if not any(ax is a for a in cached[1]):
                fig.delaxes(ax)  # twins and insets from the previous draw
        for ax in cached[1]:
            _empty(ax)
        axes = cached[1]
    else:
        fig.clear()
        axes = list(fig.subplots(nrows, ncols, gridspec_kw=spec, squeeze=False).flatten())
        fig._d2l_panels = (key, axes)
    return axes if nrows * ncols > 1 else axes[0]


def _empty(ax) -> None:
    """Return an axes to the state ``fig.subplots`` gives, keeping its tick objects."""
    for child in list(ax.child_axes):  # insets
        child.remove()
    for container in list(ax.containers):
        container.remove()
    # Group by group, re-read each time: removing a contour set also removes its labels.
    for group in ("collections", "lines", "patches", "texts", "images", "artists", "tables"):
        for artist in list(getattr(ax, group)):
            if artist in getattr(ax, group):
                artist.remove()
    if ax.legend_ is not None:
        ax.legend_.remove()
    for axis, set_scale in ((ax.xaxis, ax.set_xscale), (ax.yaxis, ax.set_yscale)):
        if axis.get_scale() != "linear":
            set_scale("linear")
        axis.set_major_locator(ticker.AutoLocator())
        axis.set_major_formatter(ticker.ScalarFormatter())
        axis.set_minor_locator(ticker.NullLocator())
        axis.set_minor_formatter(ticker.NullFormatter())
    ax.set_title("")
    ax.set_xlabel("")
    ax.set_ylabel("")
    ax.set_prop_cycle(None)
    ax.ignore_existing_data_limits = True
    ax.set_autoscale_on(True)
    ax.set_aspect("auto")
    ax.margins(x=STYLE.get("axes.xmargin", 0.05), y=STYLE.get("axes.ymargin", 0.05))
    ax.set_axis_on()
    ax.grid(STYLE.get("axes.grid", False))


def render(explorer: Explorer, fig: Figure, result, small: bool = False) -> bytes:
    """Redraw ``fig`` from ``result`` and return it as PNG bytes. One Agg draw and a direct PNG
    encode: ``savefig`` would add a second pass over the figure.

    Live updates use the fastest encoding. ``small=True`` (the static view, which embeds every
    frame in the page) quantises to a 256-colour palette: about a quarter of the bytes, faster
    to encode than full-colour PNG at high compression, and indistinguishable for line art."""
    import matplotlib
    from PIL import Image
    with matplotlib.rc_context(EXPLORER_STYLE):
        for text in list(fig.texts):
            text.remove()
        for legend in list(fig.legends):
            legend.remove()
        explorer.draw(fig, result)
        fig.canvas.draw()
    image = Image.fromarray(np.asarray(fig.canvas.buffer_rgba()))
    buffer = io.BytesIO()
    if small:
        image.convert("RGB").quantize(256, method=Image.Quantize.FASTOCTREE).save(buffer, format="png", compress_level=9)
    else:
        image.save(buffer, format="png", compress_level=1)
    return buffer.getvalue()


def readout_html(values: dict[str, str]) -> str:
    """The readouts as a compact two-column table (inline styles: themes restyle bare tables)."""
    cell = "padding:1px 10px 1px 0;border:none;font-size:90%;line-height:1.3"
    rows = "".join(f"<tr><th style='text-align:left;font-weight:600;{cell}'>{html.escape(k)}</th>"
                   f"<td class='d2l-readout' data-name='{html.escape(k)}' style='{cell}'>{html.escape(v)}</td></tr>"
                   for k, v in values.items())
    return f"<table class='d2l-readouts' style='border-collapse:collapse;margin:4px 0'>{rows}</table>"


class LiveView:
    """ipywidgets controls, one figure rendered in place, and the readouts.

    ``set(name=value, ...)`` moves controls from Python, as a reader would with the mouse;
    ``result``, ``readouts`` and ``figure`` then hold what is shown.
    """

    def __init__(self, explorer: Explorer, **params):
        import ipywidgets as w
        self.explorer = explorer
        start = validate(explorer.controls, params)
        self.controls = {c.name: c.widget() for c in explorer.controls}
        for name, widget in self.controls.items():
            widget.value = start[name]
        self.figure = new_figure(explorer)
        self.image = w.Image(format="png", layout=w.Layout(max_width="100%"))
        self.readout_widget = w.HTML()
        self.result, self.readouts = None, {}
        self.refresh()
        for c in explorer.controls:  # a bound that depends on another control follows it
            if getattr(c, "at_most", None):
                other, offset = c.at_most
                self.controls[c.name].max = start[other] + offset
                self.controls[other].observe(
                    lambda change, name=c.name, offset=offset: setattr(self.controls[name], "max", change.new + offset),
                    names="value")
            if getattr(c, "used_from", None):  # a control that changes nothing is greyed out
                other, needed = c.used_from
                self.controls[c.name].disabled = start[other] < needed
                self.controls[other].observe(
                    lambda change, name=c.name, needed=needed: setattr(self.controls[name], "disabled", change.new < needed),
                    names="value")
        for widget in self.controls.values():
            widget.observe(lambda change: self.refresh(), names="value")
        self.widget = w.VBox([w.HTML(f"<b>{html.escape(explorer.title)}</b>"), *self.controls.values(),
                              self.image, self.readout_widget])

    @property
    def params(self) -> dict:
        return {name: widget.value for name, widget in self.controls.items()}

    def set(self, **values) -> None:
        validate(self.explorer.controls, clamp(self.explorer.controls, {**self.params, **values}, moved=set(values)))
        for name, value in sorted(values.items(), key=lambda kv: kv[0] not in self._bounding):
            self.controls[name].value = value

    @property
    def _bounding(self) -> set[str]:
        return {c.at_most[0] for c in self.explorer.controls if getattr(c, "at_most", None)}

    def refresh(self) -> None:
        self.result = self.explorer.compute(**self.params)
        self.image.value = render(self.explorer, self.figure, self.result)
        self.readouts = self.explorer.readouts(self.result)
        self.readout_widget.value = readout_html(self.readouts)

    def _repr_mimebundle_(self, **kwargs):
        return self.widget._repr_mimebundle_(**kwargs)


def static_html(explorer: Explorer, frame: str | None = None, **params) -> str:
    """A self-contained HTML fragment: frames over one control (``frame``, by default the
    explorer's ``frame_control``) behind a slider, every other control fixed at ``params``."""
    fixed = validate(explorer.controls, params)
    names = [c.name for c in explorer.controls]
    if frame is not None and frame not in names:
        raise ValueError(f"frame must name one of this explorer's controls {names}, got {frame!r}")
    control = explorer.control(frame or explorer.frame_control)
    values = control.frames(explorer.frame_count)
    if getattr(control, "at_most", None):  # frames beyond a bound set by another control
        other, offset = control.at_most
        values = [v for v in values if v <= fixed[other] + offset]
    if fixed[control.name] not in values:  # the first frame shown is exactly the requested state
        values = sorted([*values, fixed[control.name]])
    fig = new_figure(explorer)
    frames = []
    for value in values:
        result = explorer.compute(**clamp(explorer.controls, {**fixed, control.name: value}, moved={control.name}))
        png = base64.b64encode(render(explorer, fig, result, small=True)).decode("ascii")
        frames.append({"value": _fmt(value), "img": "data:image/png;base64," + png,
                       "readouts": readout_html(explorer.readouts(result))})
    start = values.index(fixed[control.name])
    uid = "d2l-" + uuid.uuid4().hex[:10]
    data = json.dumps(frames).replace("</", "<\\/")
    return f"""<div class="d2l-explorer" id="{uid}" data-frames="{len(frames)}">
<div style="font-weight:bold">{html.escape(explorer.title)}</div>
<label style="display:block">{html.escape(control.label)}
<input type="range" class="d2l-frame-slider" min="0" max="{len(frames) - 1}" step="1" value="{start}"
 style="width:60%;vertical-align:middle" aria-label="{html.escape(control.label)}">
<span class="d2l-frame-value">{frames[start]["value"]}</span></label>
<img class="d2l-frame" alt="{html.escape(explorer.title)}" style="max-width:100%" src="{frames[start]["img"]}">
<div class="d2l-frame-readouts">{frames[start]["readouts"]}</div>
<p style="font-size:85%;color:#555">{html.escape(LIVE_NOTE)}</p>
<script>(function () {{
  var root = document.getElementById("{uid}"), frames = {data};
  var slider = root.querySelector(".d2l-frame-slider");
  slider.addEventListener("input", function () {{
    var f = frames[Number(slider.value)];
    root.querySelector(".d2l-frame").src = f.img;
    root.querySelector(".d2l-frame-value").textContent = f.value;
    root.querySelector(".d2l-frame-readouts").innerHTML = f.readouts;
  }});
}})();</script>
</div>"""


def _fmt(value) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


class StaticView:
    def __init__(self, explorer: Explorer, frame: str | None = None, **params):
        self.html = static_html(explorer, frame, **params)

    def _repr_html_(self) -> str:
        return self.html


def show(explorer: Explorer, frame: str | None = None, **params):
    """The live view in a kernel with a widget frontend; the static view when building the book.

    ``params`` set the starting controls; ``frame`` picks the control the static view steps
    through (the live view has every control anyway)."""
    if os.environ.get(STATIC_ENV):
        return StaticView(explorer, frame, **params)
    if frame is not None and frame not in [c.name for c in explorer.controls]:
        raise ValueError(f"frame must name one of this explorer's controls, got {frame!r}")
    return LiveView(explorer, **params)
