"""W6 (cross-entropy = entropy of the data + KL): relations, the live view, bad parameters."""
import math
import warnings

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from scipy import stats
from torch.distributions import Categorical

from d2lcore.explore import cross_entropy_decomposition as w6
from d2lcore.explore import toolkit
from explorer_strategies import control_values


def _data_and_model(params):
    """Labels, frequencies and model probabilities rebuilt from the controls, without w6."""
    counts = np.array([params[f"n{i}"] for i in range(4)])
    labels = np.repeat(np.arange(4), counts)
    p = counts / counts.sum()
    weights = np.array([params[f"w{i}"] for i in range(4)])
    q = p if params["fit"] else weights / weights.sum()
    return labels, p, q, weights / weights.sum()


def _average_nll(q, labels) -> float:
    """-mean log q(y_i) through torch's cross-entropy on log-probabilities as logits."""
    log_q = torch.log(torch.tensor(q, dtype=torch.float64)).expand(len(labels), 4)
    return float(F.cross_entropy(log_q, torch.tensor(labels)))


@settings(max_examples=30, deadline=None)
@given(control_values(w6.CONTROLS))
def test_w6_relations_hold_over_the_whole_control_range(params):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        r = w6.compute(**params)
    labels, p, q, q_weights = _data_and_model(params)
    values = (r.entropy, r.kl, r.cross_entropy, r.average_nll)
    assert all(math.isfinite(v) for v in values) and np.isfinite(r.model).all()
    np.testing.assert_array_equal(r.labels, labels)
    np.testing.assert_allclose(r.frequencies, p, rtol=1e-15)
    np.testing.assert_allclose(r.model, q, rtol=1e-12)

    # H + KL is the average NLL, the latter computed label by label, independently of w6.
    nll = _average_nll(q, labels)
    assert r.average_nll == pytest.approx(nll, rel=1e-12)
    assert r.entropy + r.kl == pytest.approx(nll, rel=1e-9, abs=1e-12)
    assert r.cross_entropy == pytest.approx(nll, rel=1e-9, abs=1e-12)
    # The parts against scipy and torch.distributions.
    assert r.entropy == pytest.approx(stats.entropy(p), rel=1e-12, abs=1e-15)
    assert r.kl == pytest.approx(stats.entropy(p, q), rel=1e-9, abs=1e-12)
    torch_kl = torch.distributions.kl_divergence(Categorical(probs=torch.tensor(p)), Categorical(probs=torch.tensor(q)))
    assert r.kl == pytest.approx(float(torch_kl), rel=1e-9, abs=1e-12)

    # KL >= 0, and KL = 0 only when the model is the data: Pinsker's inequality,
    # KL >= ||p - q||_1^2 / 2, rules out a zero KL for any q != p.
    assert r.kl >= -1e-12
    assert r.kl >= 0.5 * np.abs(p - q).sum() ** 2 - 1e-12
    if params["fit"]:
        assert abs(r.kl) < 1e-12 and r.average_nll == pytest.approx(r.entropy, rel=1e-12, abs=1e-15)
        # The fitted model is the MLE: the model the weights describe does no better.
        assert r.average_nll <= _average_nll(q_weights, labels) + 1e-12


def test_w6_the_frequencies_are_the_categorical_mle():
    params = dict(n0=7, n1=0, n2=4, n3=9, fit=True)
    r = w6.compute(**params)
    labels, p, _, _ = _data_and_model({**params, **{f"w{i}": 1.0 for i in range(4)}})
    rng = np.random.default_rng(0)
    # Random models from a Dirichlet, and small perturbations of the fit itself: none beats it.
    candidates = np.vstack([rng.dirichlet(np.ones(4), size=200), np.abs(p + rng.normal(0, 1e-3, (50, 4)))])
    candidates /= candidates.sum(1, keepdims=True)
    worse = -np.log(candidates[:, labels]).mean(1)  # -mean log q(y_i) for each candidate at once
    assert worse.min() > r.average_nll
    assert r.average_nll == pytest.approx(stats.entropy(p), rel=1e-12)
    # Away from the fit, KL grows as the model moves away from the frequencies.
    kls = [w6.compute(**{**params, "fit": False, "w0": 7 / 20 * 5.0, "w1": 0.1, "w2": 4 / 20 * 5.0, "w3": w3}).kl
           for w3 in (9 / 20 * 5.0, 3.0, 4.0, 5.0)]
    assert np.all(np.diff(kls) > 0)


def test_w6_bad_parameters_name_the_parameter_and_range():
    with pytest.raises(ValueError, match=r"n0 must be a number in \[1, 20\], got 0"):
        w6.compute(n0=0)  # an empty data set is unreachable
    with pytest.raises(ValueError, match=r"n3 must be a number in \[0, 20\], got 21"):
        w6.compute(n3=21)
    with pytest.raises(ValueError, match=r"n1 must be a whole number in \[0, 20\], got 2.5"):
        w6.compute(n1=2.5)
    with pytest.raises(ValueError, match=r"w2 must be a number in \[0.1, 5.0\], got 0"):
        w6.compute(w2=0)
    with pytest.raises(ValueError, match=r"w1 must be a number in \[0.1, 5.0\], got -1.0"):
        w6.compute(w1=-1.0)
    with pytest.raises(ValueError, match="fit must be True or False, got 1"):
        w6.compute(fit=1)
    with pytest.raises(TypeError, match=r"unknown parameter\(s\) \['q'\]"):
        w6.compute(q=[0.25] * 4)


def test_w6_live_view_moves_each_control_and_shows_what_compute_says():
    view = toolkit.LiveView(w6.EXPLORER)
    moves = {"w0": (0.3, 4.2), "n0": (1, 15), "n1": (0, 11), "n2": (9, 0), "n3": (20, 4),
             "w1": (2.5, 0.1), "w2": (5.0, 1.7), "w3": (0.6, 3.3), "fit": (True, False)}
    for name, values in moves.items():
        for value in values:
            before = view.image.value
            view.set(**{name: value})
            r = w6.compute(**view.params)
            assert view.params[name] == value
            assert view.readouts == w6.readouts(r)
            assert view.readout_widget.value == toolkit.readout_html(view.readouts)
            assert all(v.endswith("nats") for k, v in view.readouts.items() if k != "model q")
            stack, probs = view.figure.axes
            h, kl, nll = stack.patches
            np.testing.assert_allclose([h.get_height(), kl.get_height(), nll.get_height()],
                                       [r.entropy, r.kl, r.average_nll])
            assert kl.get_y() == h.get_height()  # KL is stacked on top of H
            assert h.get_height() + kl.get_height() == pytest.approx(nll.get_height(), rel=1e-9, abs=1e-12)
            heights = [bar.get_height() for bar in probs.patches]
            np.testing.assert_allclose(heights[:4], r.frequencies)
            np.testing.assert_allclose(heights[4:], r.model)
            assert view.image.value != before


def test_w6_a_reused_figure_draws_exactly_what_a_fresh_one_draws():
    reused = toolkit.new_figure(w6.EXPLORER)
    toolkit.render(w6.EXPLORER, reused, w6.compute(n0=20, n1=0, n2=0, n3=0, w0=0.1))
    r2 = w6.compute(n0=2, n1=5, fit=True)
    assert toolkit.render(w6.EXPLORER, reused, r2) == toolkit.render(w6.EXPLORER, toolkit.new_figure(w6.EXPLORER), r2)
    assert len(reused.axes) == 2 and len(reused.axes[1].patches) == 8
