"""W18 calibration and temperature: T keeps the ranking, changes the probabilities, and the
validation NLL picks it (chapter 3's calibration section)."""
import math
import warnings

import numpy as np
import pytest
import torch
from hypothesis import given, settings

from d2lcore import calibration
from d2lcore.explore import calibration_temperature as w18
from d2lcore.explore import toolkit
from explorer_strategies import control_values


@settings(max_examples=6, deadline=None)
@given(control_values(w18.CONTROLS))
def test_w18_measures_stay_in_range_and_accuracy_ignores_t(params):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        r = w18.compute(**params)
        w18.readouts(r)
    base = w18.compute()
    assert r.accuracy == base.accuracy  # the arg max does not depend on T
    assert 0 <= r.ece <= 1 and 0 <= r.brier <= 2 and r.nll > 0
    assert r.count.sum() == w18.N_DEFAULT and len(r.count) == r.bins == len(r.edges) - 1
    assert 1 / 10 - 1e-12 <= r.mean_confidence <= 1
    assert 0 <= r.entropy <= math.log(10) + 1e-12
    assert r.nll >= r.best_nll - 1e-9  # the best temperature is the best
    # the measures agree with d2lcore.calibration on softmax(z / T)
    scores = w18.default_scores()
    probs = (scores.logits / r.temperature).softmax(1)
    # (the NLL is exact, from the log-softmax; calibration.nll clamps probabilities at 1e-12)
    exact = torch.nn.functional.cross_entropy(scores.logits / r.temperature, scores.labels)
    assert r.nll == pytest.approx(exact.item(), rel=1e-9)
    if r.temperature >= 1:
        assert r.nll == pytest.approx(calibration.nll(probs, scores.labels).item(), rel=1e-9)
    assert r.ece == pytest.approx(calibration.ece(probs, scores.labels, r.bins).item(), abs=1e-12)
    assert np.isfinite(r.nll_curve).all() and np.isfinite(r.ece_curve).all()
    # the curves' one-pass ECE is calibration.ece at every grid temperature
    for i in (0, 24, 48):
        t = w18.TEMPERATURES[i]
        tempered = (scores.logits / t).softmax(1)
        assert r.ece_curve[i] == pytest.approx(calibration.ece(tempered, scores.labels, r.bins).item(),
                                               abs=1e-12)


def test_the_temperature_limits_are_one_hot_and_uniform_and_entropy_grows_with_t():
    z = torch.tensor([[2.0, -1.0, 0.5, 3.0]], dtype=torch.float64)
    cold, hot = w18.tempered(z, 1e-3), w18.tempered(z, 1e6)
    torch.testing.assert_close(cold, torch.tensor([[0.0, 0, 0, 1]], dtype=torch.float64))
    torch.testing.assert_close(hot, torch.full((1, 4), 0.25, dtype=torch.float64), atol=1e-5, rtol=0)
    frames = w18.EXPLORER.control("temperature").frames(w18.EXPLORER.frame_count)
    assert min(frames) == 0.25 and max(frames) == 4.0
    logits = w18.default_scores().logits
    probs = [w18.tempered(logits, t) for t in frames]              # what each frame shows
    entropy = [float(-(q * q.log()).sum(1).mean()) for q in probs]
    confidence = [float(q.max(1).values.mean()) for q in probs]
    assert all(a < b for a, b in zip(entropy, entropy[1:]))
    assert all(a > b for a, b in zip(confidence, confidence[1:]))
    for t in (frames[0], frames[-1]):  # and the explorer reports the same numbers
        r = w18.compute(temperature=t)
        assert r.entropy == pytest.approx(entropy[frames.index(t)], rel=1e-9)
        assert r.mean_confidence == pytest.approx(confidence[frames.index(t)], rel=1e-12)


def test_nll_is_convex_in_one_over_t_and_the_default_needs_t_2():
    scores = w18.default_scores()
    betas = np.linspace(0.1, 3.0, 30)
    nll = np.array([w18.nll_at(scores, 1 / b) for b in betas])
    assert np.all(np.diff(nll, 2) > -1e-9)  # convex in beta = 1/T
    best = w18.best_temperature(scores)
    # The model's logits are exactly twice the logits the labels were drawn from. The MLE of
    # the temperature from 4,000 labels has a standard error of a few hundredths; the seed is
    # fixed, so this is deterministic; 0.15 is a wide margin.
    assert abs(best - 2.0) < 0.15
    grid = w18.TEMPERATURES
    assert w18.nll_at(scores, best) <= min(w18.nll_at(scores, t) for t in grid) + 1e-9
    at_one, at_best = w18.compute(temperature=1.0), w18.compute(temperature=round(best / 0.05) * 0.05)
    assert at_best.nll < at_one.nll and at_best.ece < at_one.ece / 3 and at_best.brier < at_one.brier
    assert at_one.mean_confidence > at_one.accuracy + 0.1  # over-confident at T = 1


def test_scores_are_checked_and_a_passed_classifier_is_used():
    with pytest.raises(ValueError, match="logits must have shape"):
        w18.Scores(torch.zeros(5), torch.zeros(5, dtype=torch.int64), "bad")
    with pytest.raises(ValueError, match="labels must have shape"):
        w18.Scores(torch.zeros(5, 3), torch.zeros(4, dtype=torch.int64), "bad")
    with pytest.raises(TypeError, match="integer class indices"):
        w18.Scores(torch.zeros(5, 3), torch.zeros(5), "bad")
    # a calibrated classifier: labels drawn from its own softmax, so T = 1 is about right
    g = toolkit.generator(3)
    z = 2 * torch.randn(3000, 5, generator=g, dtype=torch.float64)
    y = torch.multinomial(z.softmax(1), 1, generator=g).squeeze(1)
    mine = w18.Scores(z.float(), y, "calibrated")
    assert mine.logits.dtype == torch.float64
    r = w18.explorer(mine).compute()
    assert r.name == "calibrated" and r.count.sum() == 3000
    # 3,000 labels: the temperature MLE has s.e. about 0.03; 0.15 is 5 s.e. (false alarm < 1e-6)
    assert abs(r.best_temperature - 1.0) < 0.15


def test_w18_live_view_moves_every_control_and_draws_what_compute_says():
    view = toolkit.LiveView(w18.EXPLORER)
    for name, value in (("temperature", 2.0), ("bins", 10), ("temperature", 0.5), ("bins", 25)):
        before = view.image.value
        view.set(**{name: value})
        r = w18.compute(**view.params)
        assert view.readouts == w18.readouts(r) and view.image.value != before
        ax_r, ax_c = view.figure.axes
        filled = r.count > 0
        heights = [b.get_height() for b in ax_r.containers[0]]
        np.testing.assert_allclose(heights, r.bin_accuracy[filled])
        np.testing.assert_allclose(ax_c.lines[0].get_ydata(), r.nll_curve)
        assert ax_c.lines[3].get_xdata()[0] == r.temperature


def test_w18_static_view_steps_the_temperature_without_a_kernel():
    html = toolkit.static_html(w18.EXPLORER)
    assert html.count("data:image/png;base64,") >= 15 and "http" not in html.split("<script>")[1]
    assert "temperature T" in html
