"""W15 next-token sampling: a categorical per step, reshaped by temperature and top-k."""
import math
import warnings

import numpy as np
import pytest
import torch
from hypothesis import given, settings

from d2lcore.data import text_corpus
from d2lcore.explore import next_token_sampling as w15
from d2lcore.explore import toolkit
from explorer_strategies import control_values


@settings(max_examples=15, deadline=None)
@given(control_values(w15.CONTROLS))
def test_w15_is_a_distribution_over_the_whole_control_range(params):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        r = w15.compute(**params)
        w15.readouts(r)
    assert np.isfinite(r.probs).all() and np.isfinite(r.entropies).all()
    assert r.probs.sum() == pytest.approx(1.0, abs=1e-12) and (r.probs >= 0).all()
    assert int((r.probs > 0).sum()) <= r.top_k
    assert -1e-12 <= r.entropy <= math.log2(r.top_k) + 1e-9 <= r.max_entropy + 1e-9
    # entropy grows with temperature (at a fixed cut): the curve never falls
    assert np.all(np.diff(r.entropies) >= -1e-9)
    assert len(r.samples) == w15.SAMPLES and all(len(s) == w15.SAMPLE_LENGTH for s in r.samples)
    assert all(set(s) <= set(r.chars) for s in r.samples)


def test_the_temperature_limits_are_greedy_and_uniform():
    logits = torch.tensor([2.0, 1.0, 0.5, -1.0, 3.0], dtype=torch.float64)
    cold = w15.next_distribution(logits, 1e-3, 5)
    torch.testing.assert_close(cold, torch.nn.functional.one_hot(torch.tensor(4), 5).double())
    hot = w15.next_distribution(logits, 1e6, 5)
    torch.testing.assert_close(hot, torch.full((5,), 0.2, dtype=torch.float64), atol=1e-5, rtol=0)
    hot3 = w15.next_distribution(logits, 1e6, 3)  # uniform over the three largest
    torch.testing.assert_close(hot3, torch.tensor([1 / 3, 1 / 3, 0, 0, 1 / 3], dtype=torch.float64),
                               atol=1e-5, rtol=0)
    torch.testing.assert_close(w15.next_distribution(logits, 1.0, 5), logits.softmax(0))
    assert w15.entropy_bits(hot).item() == pytest.approx(math.log2(5), abs=1e-8)


def test_top_1_is_greedy_decoding_and_every_sample_agrees():
    r = w15.compute(top_k=1, temperature=2.5)
    assert r.entropy == 0.0 and len(set(r.samples)) == 1
    greedy = w15.compute(temperature=0.05)
    assert greedy.samples[0] == r.samples[0]  # the same greedy chain, both ways


def test_the_default_bigram_is_the_smoothed_counts_of_the_training_text():
    text = text_corpus.load("hamlet")
    train = text[: int(0.8 * len(text))]
    model = w15.bigram_model()
    assert model.chars == "".join(sorted(set(text))) and len(model.chars) == 65
    pairs = sum(1 for a, b in zip(train, train[1:]) if a == "b" and b == "e")
    starts = train[:-1].count("b")
    row = model.logits(model.encode("b")[None])[0].exp()
    assert row[model.chars.index("e")].item() == pytest.approx((pairs + 0.1) / (starts + 0.1 * 65), rel=1e-12)
    # a bigram sees only the last character
    torch.testing.assert_close(model.logits(model.encode("To be, or not to b")[None]),
                               model.logits(model.encode("b")[None]))
    with pytest.raises(ValueError, match="does not know"):
        model.encode("é")


def test_a_passed_model_is_used_and_sampling_is_multinomial_from_a_private_generator():
    chars = "ab"
    uniform = w15.CharModel(chars, lambda ids: torch.zeros(ids.shape[0], 2), "coin")
    # the contexts are Hamlet's; a model with another alphabet says which characters it lacks
    with pytest.raises(ValueError, match="does not know"):
        w15.explorer(uniform).compute()
    texts = w15.sample(uniform, "ab", 1.0, 2, count=200, length=50)
    share = np.mean([t.count("a") / 50 for t in texts])
    # 10,000 fair coin flips: sd 0.005; 5 sd, false alarm below 1e-6
    assert abs(share - 0.5) < 0.025
    assert texts == w15.sample(uniform, "ab", 1.0, 2, count=200, length=50)


def test_w15_live_view_moves_every_control_and_the_bars_show_compute():
    view = toolkit.LiveView(w15.EXPLORER)
    for name, value in (("context", w15.CONTEXTS[2]), ("temperature", 0.3), ("top_k", 5),
                        ("temperature", 2.0), ("context", w15.CONTEXTS[4])):
        before = view.image.value
        view.set(**{name: value})
        r = w15.compute(**view.params)
        assert view.readouts == w15.readouts(r) and view.image.value != before
        ax_p, ax_h = view.figure.axes
        order = np.argsort(-r.base, kind="stable")[: w15.SHOWN]
        np.testing.assert_allclose([b.get_height() for b in ax_p.patches[w15.SHOWN:]], r.probs[order])
        np.testing.assert_allclose(ax_h.lines[0].get_ydata(), r.entropies)


def test_w15_static_view_steps_through_the_temperature_without_a_kernel():
    html = toolkit.static_html(w15.EXPLORER)
    assert html.count("data:image/png;base64,") >= 13 and "://" not in html
