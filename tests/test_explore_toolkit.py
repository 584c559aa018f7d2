"""The explorer toolkit, exercised through W4 (softmax builds a categorical)."""
import math
import re
import warnings

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from d2lcore import likelihood
from d2lcore.explore import softmax_categorical as w4
from d2lcore.explore import toolkit

from explorer_strategies import control_values  # noqa: E402  registers the "explorers" profile


@settings(settings.get_profile("explorers"))
@given(control_values(w4.CONTROLS))
def test_w4_relations_hold_over_the_whole_control_range(params):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        r = w4.compute(**params)
    k = params["classes"]
    assert r.probabilities.shape == (k,) and np.isfinite(r.probabilities).all()
    assert r.probabilities.sum() == pytest.approx(1.0, abs=1e-12)
    assert r.shift_effect < 1e-12  # softmax is shift-invariant
    onehot = np.eye(k)[params["true_class"]]
    np.testing.assert_allclose(r.gradient, r.probabilities - onehot, atol=1e-12)  # prediction minus truth
    assert r.nll == pytest.approx(-math.log(r.probabilities[params["true_class"]]), rel=1e-9, abs=1e-12)
    assert 0 <= r.entropy <= math.log(k) + 1e-12
    z = torch.tensor(r.logits, dtype=torch.float64) / params["temperature"]
    assert r.nll == pytest.approx(float(likelihood.nll("cross_entropy", z[None], torch.tensor([params["true_class"]]))))


def test_w4_temperature_sets_confidence():
    entropies = [w4.compute(temperature=t).entropy for t in (0.2, 1.0, 5.0)]
    assert entropies[0] < entropies[1] < entropies[2]


def test_w4_bad_parameters_name_the_parameter_and_range():
    with pytest.raises(ValueError, match=r"temperature must be a number in \[0.2, 5.0\], got 0"):
        w4.compute(temperature=0)
    with pytest.raises(ValueError, match=r"true_class must be at most classes-1 = 3, got 5"):
        w4.compute(classes=4, true_class=5)
    with pytest.raises(ValueError, match="classes must be a whole number"):
        w4.compute(classes=3.5)
    with pytest.raises(TypeError, match=r"unknown parameter\(s\) \['logits'\]"):
        w4.compute(logits=[1, 2])


def test_live_view_moves_each_control_and_shows_what_compute_says():
    view = toolkit.LiveView(w4.EXPLORER)
    for name, values in {"temperature": (0.5, 3.0), "shift": (-4.0, 7.5), "z1": (-2.0, 4.0),
                         "classes": (3, 6), "true_class": (1, 2)}.items():
        for value in values:
            before = view.image.value
            view.set(**{name: value})
            expected = w4.compute(**view.params)
            assert view.params[name] == value
            assert view.readouts == w4.readouts(expected)
            assert view.readout_widget.value == toolkit.readout_html(view.readouts)
            bars = [p.get_height() for p in view.figure.axes[0].patches]
            np.testing.assert_allclose(bars, expected.probabilities)
            if name != "shift":  # the constant changes nothing that is drawn: that is the point
                assert view.image.value != before


def test_live_view_bounds_follow_other_controls_and_reject_bad_values():
    view = toolkit.LiveView(w4.EXPLORER, classes=5, true_class=4)
    view.set(classes=3)
    assert view.controls["true_class"].max == 2 and view.params["true_class"] == 2
    with pytest.raises(ValueError, match="temperature must be"):
        view.set(temperature=50.0)


def test_live_view_greys_out_logits_beyond_the_number_of_classes():
    view = toolkit.LiveView(w4.EXPLORER, classes=4)
    assert [view.controls[f"z{i}"].disabled for i in range(6)] == [False] * 4 + [True] * 2
    view.set(classes=6)
    assert not any(view.controls[f"z{i}"].disabled for i in range(6))
    view.set(classes=3)
    assert [view.controls[f"z{i}"].disabled for i in range(6)] == [False] * 3 + [True] * 3
    before = view.readouts
    view.set(z5=-4.0)  # moving a greyed-out logit from Python changes nothing shown
    assert view.readouts == before


def test_live_view_does_not_leak_pyplot_figures():
    import matplotlib.pyplot as plt
    before = len(plt.get_fignums())
    view = toolkit.LiveView(w4.EXPLORER)
    view.set(temperature=2.0)
    assert len(plt.get_fignums()) == before
    assert "application/vnd.jupyter.widget-view+json" in view._repr_mimebundle_()


def test_static_view_holds_one_frame_per_value_of_the_main_control():
    html = toolkit.static_html(w4.EXPLORER, classes=3)
    values = w4.EXPLORER.control("temperature").frames(w4.EXPLORER.frame_count)
    assert 1.0 not in values  # the default temperature is added as its own frame
    assert f'data-frames="{len(values) + 1}"' in html and len(values) >= 10
    assert html.count("data:image/png;base64,") == len(values) + 2  # every frame, plus the one shown
    assert "Binder" in html and "<script>" in html
    assert not re.search(r"(src|href)=[\"']?(https?:)?//", html), "the static view must not load anything from the network"
    # the readouts of the frame shown first are those of compute at the default temperature
    first = w4.readouts(w4.compute(classes=3))
    assert all(re.search(re.escape(v.replace("'", "&#x27;")), html) for v in first.values())


def test_show_switches_on_the_environment(monkeypatch):
    monkeypatch.delenv(toolkit.STATIC_ENV, raising=False)
    assert isinstance(w4.show(), toolkit.LiveView)
    monkeypatch.setenv(toolkit.STATIC_ENV, "1")
    static = w4.show(temperature=2.0)
    assert isinstance(static, toolkit.StaticView) and static._repr_html_().startswith('<div class="d2l-explorer"')


def test_slider_frames_stay_on_the_grid_and_in_range():
    s = toolkit.Slider("x", "x", 0.2, 5.0, 0.1, 1.0)
    frames = s.frames(21)
    assert frames[0] == 0.2 and frames[-1] == 5.0 and len(frames) == 21
    assert all(abs(round(v / 0.1) * 0.1 - v) < 1e-9 for v in frames)
    assert toolkit.Slider("n", "n", 1, 4, 1, 2, integer=True).frames(21) == [1, 2, 3, 4]
    assert toolkit.Choice("c", "c", ("a", "b"), "a").frames(5) == ["a", "b"]
    with pytest.raises(ValueError, match=r"c must be one of \['a', 'b'\]"):
        toolkit.Choice("c", "c", ("a", "b"), "a").check("z")
    with pytest.raises(ValueError, match="must be True or False"):
        toolkit.Toggle("t", "t", False).check(1)


def test_a_reused_figure_draws_exactly_what_a_fresh_one_draws():
    # Live updates empty and reuse the axes instead of rebuilding them; nothing may carry over.
    explorer = w4.EXPLORER
    reused = toolkit.new_figure(explorer)
    toolkit.render(explorer, reused, w4.compute(classes=6, temperature=0.3, z1=4.0))
    again = toolkit.render(explorer, reused, w4.compute(classes=3, temperature=2.0))
    fresh = toolkit.render(explorer, toolkit.new_figure(explorer), w4.compute(classes=3, temperature=2.0))
    assert again == fresh
    assert len(reused.axes) == 2 and len(reused.axes[0].patches) == 3


def test_the_static_view_can_step_through_another_control(monkeypatch):
    html = toolkit.static_html(w4.EXPLORER, frame="true_class", classes=3)
    assert 'data-frames="3"' in html and "true class y" in html  # classes 0, 1, 2 and its label
    with pytest.raises(ValueError, match=r"frame must name one of this explorer's controls .*got 'logits'"):
        toolkit.static_html(w4.EXPLORER, frame="logits")
    monkeypatch.setenv(toolkit.STATIC_ENV, "1")
    assert 'data-frames="3"' in w4.show(frame="true_class", classes=3)._repr_html_()
    monkeypatch.delenv(toolkit.STATIC_ENV)
    with pytest.raises(ValueError, match="frame must name"):
        w4.show(frame="nope")


def test_static_frames_over_a_bounding_control_clamp_the_bounded_one():
    html = toolkit.static_html(w4.EXPLORER, frame="classes", classes=6, true_class=5)
    assert 'data-frames="4"' in html  # 3, 4, 5, 6 classes; true class pulled down to classes-1


def test_emptying_axes_removes_insets_and_labelled_contours():
    explorer = toolkit.Explorer("t", (toolkit.Slider("a", "a", 1.0, 2.0, 0.5, 1.0),), lambda a: a,
                                lambda fig, a: _contour_with_inset(toolkit.panels(fig, 1), a), lambda a: {}, "a")
    fig = toolkit.new_figure(explorer)
    for a in (1.0, 2.0, 1.5):
        toolkit.render(explorer, fig, a)
        ax = fig.axes[0]
        assert len(ax.child_axes) == 1 and len(ax.collections) == 1
    assert toolkit.render(explorer, fig, 2.0) == toolkit.render(explorer, toolkit.new_figure(explorer), 2.0)


def _contour_with_inset(ax, a):
    x, y = np.meshgrid(np.linspace(-1, 1, 20), np.linspace(-1, 1, 20))
    ax.clabel(ax.contour(x, y, a * (x**2 + y**2), levels=3), fontsize=7)
    ax.inset_axes([0.7, 0.7, 0.25, 0.25]).plot([0, 1], [0, a])
