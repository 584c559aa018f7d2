"""W7 dice information lab: information identities, the law of large numbers, the live view."""
import math
import warnings

import numpy as np
import pytest
from hypothesis import given, settings

from d2lcore import likelihood
from d2lcore.explore import dice_information as w7
from d2lcore.explore import toolkit
from explorer_strategies import control_values


def bernstein_tolerance(n: int, sd: float, spread: float, failure: float = 1e-6) -> float:
    """Half-width t with P(|mean of n rolls - H(p,q)| >= t) <= failure, by Bernstein's inequality.

    The surprisal of one roll is bounded (|X - mean| <= spread) with standard deviation sd, so
    P(|mean - mu| >= t) <= 2 exp(-n t^2 / (2 sd^2 + 2 spread t / 3)); solving for t gives this.
    Unlike a CLT band it holds at every n, even n = 1 with a rare face; for large n it tends to
    sqrt(2 log(2 / failure)) = 5.4 standard errors.
    """
    log_term = math.log(2 / failure)
    a = 2 * spread * log_term / 3
    return (a + math.sqrt(a * a + 8 * n * log_term * sd * sd)) / (2 * n)


@settings(max_examples=30, deadline=None)
@given(control_values(w7.CONTROLS))
def test_w7_relations_hold_over_the_whole_control_range(params):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        r = w7.compute(**params)
    scalars = [r.entropy, r.cross_entropy, r.kl_pq, r.kl_qp, r.surprisal_sd]
    assert np.isfinite(scalars).all() and np.isfinite(r.running_mean).all() and np.isfinite(r.surprisal).all()
    for die in (r.p, r.q):  # every reachable state is a valid die with every face possible
        assert die.shape == (6,) and (die > 0).all() and die.sum() == pytest.approx(1, abs=1e-12)
    per_unit = math.log(2) if params["units"] == "bits" else 1.0
    # Independent closed forms, in the chosen unit.
    assert r.entropy == pytest.approx(-np.sum(r.p * np.log(r.p)) / per_unit, rel=1e-12)
    assert r.cross_entropy == pytest.approx(-np.sum(r.p * np.log(r.q)) / per_unit, rel=1e-12)
    assert r.cross_entropy == pytest.approx(np.sum(r.p * r.surprisal), rel=1e-12)  # expected surprisal
    # H(p, q) = H(p) + KL(p || q) >= H(p), and KL >= 0 both ways.
    assert r.cross_entropy == pytest.approx(r.entropy + r.kl_pq, rel=1e-12, abs=1e-12)
    assert r.cross_entropy >= r.entropy - 1e-12 and r.kl_pq >= -1e-12 and r.kl_qp >= -1e-12
    assert r.kl_qp == pytest.approx(np.sum(r.q * np.log(r.q / r.p)) / per_unit, rel=1e-9, abs=1e-12)
    # The rolls: n of them, faces 1..6, and the running mean is the mean surprisal of the first k.
    n = params["n"]
    assert r.faces.shape == (n,) and set(r.faces) <= set(range(1, 7))
    assert r.running_mean[-1] == pytest.approx(np.mean(r.surprisal[r.faces - 1]), rel=1e-12)
    np.testing.assert_allclose(r.frequencies, np.bincount(r.faces - 1, minlength=6) / n)
    # Law of large numbers, with a bound valid at every n (see bernstein_tolerance).
    spread = r.surprisal.max() - r.surprisal.min()
    assert abs(r.running_mean[-1] - r.cross_entropy) <= bernstein_tolerance(n, r.surprisal_sd, spread) + 1e-12


def test_w7_fair_die_has_entropy_log_6_in_nats_and_log2_6_in_bits():
    for shape in w7.SHAPES:  # loading 0 is the fair die, whatever the shape
        nats = w7.compute(p_shape=shape, p_load=0.0, q_load=0.0)
        bits = w7.compute(p_shape=shape, p_load=0.0, q_load=0.0, units="bits")
        assert nats.entropy == pytest.approx(math.log(6), rel=1e-12)
        assert bits.entropy == pytest.approx(math.log2(6), rel=1e-12)
        assert nats.kl_pq == pytest.approx(0, abs=1e-12) and nats.cross_entropy == pytest.approx(math.log(6))
    # A loaded die is more predictable than a fair one.
    assert w7.compute(p_load=0.5).entropy < math.log(6)


def test_w7_bits_are_nats_divided_by_ln_2():
    state = dict(p_shape="even faces", p_load=0.7, q_shape="loaded one", q_load=0.4, n=300)
    nats, bits = w7.compute(**state), w7.compute(**state, units="bits")
    for name in ("entropy", "cross_entropy", "kl_pq", "kl_qp", "surprisal_sd"):
        assert getattr(bits, name) == pytest.approx(getattr(nats, name) / likelihood.NATS_PER_BIT, rel=1e-12)
        assert getattr(bits, name) == pytest.approx(getattr(nats, name) / math.log(2), rel=1e-12)
    np.testing.assert_allclose(bits.running_mean, nats.running_mean / math.log(2), rtol=1e-12)
    np.testing.assert_array_equal(bits.faces, nats.faces)  # the unit changes no roll


def test_w7_kl_is_not_symmetric_for_a_loaded_pair():
    r = w7.compute(p_shape="loaded six", p_load=0.9, q_load=0.0)
    assert r.kl_pq > 0 and r.kl_qp > 0 and abs(r.kl_pq - r.kl_qp) > 0.1
    swapped = w7.compute(p_load=0.0, q_shape="loaded six", q_load=0.9)
    assert swapped.kl_pq == pytest.approx(r.kl_qp, rel=1e-12) and swapped.kl_qp == pytest.approx(r.kl_pq, rel=1e-12)


def test_w7_rolls_follow_p():
    # 2000 rolls of a die loaded 0.8 on six: the share of sixes is within 5 binomial standard
    # errors of p(6) = 0.8 + 0.2/6 (a 5-sigma miss has probability below 1e-6).
    r = w7.compute(p_shape="loaded six", p_load=0.8, n=2000)
    p6 = r.p[5]
    assert abs(r.frequencies[5] - p6) < 5 * math.sqrt(p6 * (1 - p6) / 2000)
    # More rolls extend the same sequence: the first 100 do not change.
    np.testing.assert_array_equal(w7.compute(n=100).faces, w7.compute(n=2000).faces[:100])


def test_w7_bad_parameters_name_the_parameter_and_range():
    with pytest.raises(ValueError, match=r"n must be a number in \[1, 2000\], got 0"):
        w7.compute(n=0)
    with pytest.raises(ValueError, match=r"n must be a whole number in \[1, 2000\], got 2.5"):
        w7.compute(n=2.5)
    with pytest.raises(ValueError, match=r"p_load must be a number in \[0.0, 0.95\], got 1.0"):
        w7.compute(p_load=1.0)
    with pytest.raises(ValueError, match=r"units must be one of \['nats', 'bits'\], got 'shannons'"):
        w7.compute(units="shannons")
    with pytest.raises(ValueError, match=r"q_shape must be one of \["):
        w7.compute(q_shape="fair")
    with pytest.raises(TypeError, match=r"unknown parameter\(s\) \['p'\]"):
        w7.compute(p=[1 / 6] * 6)


def test_w7_live_view_moves_each_control_and_shows_what_compute_says():
    view = toolkit.LiveView(w7.EXPLORER)
    moves = {"n": (40, 1800), "p_load": (0.2, 0.9), "p_shape": ("low faces", "loaded one"),
             "q_shape": ("even faces", "loaded six"), "q_load": (0.6, 0.0), "units": ("bits", "nats")}
    for name, values in moves.items():
        for value in values:
            before = view.image.value
            view.set(**{name: value})
            expected = w7.compute(**view.params)
            assert view.params[name] == value
            assert view.readouts == w7.readouts(expected)
            ax_s, ax_r = view.figure.axes
            bars = ax_s.patches[:6]
            np.testing.assert_allclose([b.get_height() for b in bars], expected.surprisal)
            np.testing.assert_allclose([b.get_width() for b in bars], expected.p)  # width p, so area H(p,q)
            assert sum(b.get_width() * b.get_height() for b in bars) == pytest.approx(expected.cross_entropy)
            k = w7.plotted_rolls(expected.n)
            assert k[0] == 1 and k[-1] == expected.n
            np.testing.assert_allclose(ax_r.lines[-1].get_xdata(), k)
            np.testing.assert_allclose(ax_r.lines[-1].get_ydata(), expected.running_mean[k - 1])
            assert expected.units in ax_r.get_ylabel() and expected.units in ax_s.get_ylabel()
            assert view.image.value != before
    # With loading 0 a new shape is still the fair die: nothing visible changes.
    assert view.params["q_load"] == 0.0
    before = view.image.value
    view.set(q_shape="low faces")
    assert view.image.value == before


def test_w7_reused_figure_draws_exactly_what_a_fresh_one_draws():
    reused = toolkit.new_figure(w7.EXPLORER)
    toolkit.render(w7.EXPLORER, reused, w7.compute(p_shape="low faces", p_load=0.9, units="bits", n=7))
    r2 = w7.compute(q_shape="even faces", q_load=0.8, n=1234)
    assert toolkit.render(w7.EXPLORER, reused, r2) == toolkit.render(w7.EXPLORER, toolkit.new_figure(w7.EXPLORER), r2)
    assert len(reused.axes) == 2
