"""W2 the Huber density: normaliser, masses, limits and samples checked against closed forms and scipy."""
import math
import warnings

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from scipy import integrate, stats

from d2lcore.explore import huber_density as w2
from d2lcore.explore import toolkit
from explorer_strategies import control_values


def z_formula(d):
    """WIDGETS.md: Z(delta) = sqrt(2 pi) erf(delta / sqrt 2) + (2 / delta) exp(-delta^2 / 2)."""
    return math.sqrt(2 * math.pi) * math.erf(d / math.sqrt(2)) + 2 / d * math.exp(-d**2 / 2)


def density_formula(r, d):
    r = np.abs(r)
    return np.exp(-np.where(r <= d, r**2 / 2, d * (r - d / 2))) / z_formula(d)


def integral(f, d, upper=None):
    """Integral of an even f over the real line (or [-upper, upper]), split at its kink delta."""
    opts = {"epsabs": 1e-13, "epsrel": 1e-11, "limit": 500}
    far = upper if upper is not None else d + 60 / d + 60  # beyond: mass below exp(-60)
    return 2 * (integrate.quad(f, 0, d, **opts)[0] + integrate.quad(f, d, far, **opts)[0])


@settings(max_examples=30, deadline=None)
@given(control_values(w2.CONTROLS))
def test_w2_relations_hold_over_the_whole_control_range(params):
    before = torch.get_rng_state()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        r = w2.compute(**params)
    assert torch.equal(torch.get_rng_state(), before)  # sampling used its own seed, not the caller's
    d, n = params["delta"], params["samples"]
    for name in ("density", "gaussian", "laplace", "samples", "heights"):
        assert np.isfinite(getattr(r, name)).all(), name

    # Normaliser: closed form (module) = formula (here) = numerical integral (module, scipy quad).
    assert r.z_closed == pytest.approx(z_formula(d), rel=1e-12)
    assert r.z_quad == pytest.approx(r.z_closed, rel=1e-8)
    assert r.log_z == pytest.approx(math.log(z_formula(d)), rel=1e-12, abs=1e-12)
    # The plotted density is the normalised one and integrates to 1.
    np.testing.assert_allclose(r.density, density_formula(r.grid, d), rtol=1e-12)
    assert r.total_mass == pytest.approx(1.0, abs=1e-8)
    assert integral(lambda x: density_formula(x, d), d) == pytest.approx(1.0, abs=1e-8)
    assert -d in r.grid and d in r.grid  # the core's shading ends exactly at +-delta

    # Core and tails: core mass is the Gaussian part of Z over Z.
    core = math.sqrt(2 * math.pi) * math.erf(d / math.sqrt(2)) / z_formula(d)
    assert r.core_mass == pytest.approx(core, rel=1e-9)
    assert r.core_mass + r.tail_mass == pytest.approx(1.0, abs=1e-15)

    # Comparison curves, and the Laplace one has exactly the Huber tails' decay.
    np.testing.assert_allclose(r.gaussian, stats.norm.pdf(r.grid), rtol=1e-12)
    np.testing.assert_allclose(r.laplace, stats.laplace.pdf(r.grid, scale=1 / d), rtol=1e-12)
    tails = np.abs(r.grid) >= d
    log_ratio = np.log(r.density[tails]) - np.log(r.laplace[tails])
    np.testing.assert_allclose(log_ratio, log_ratio[0], atol=1e-9)

    # Total variation to N(0, 1), against a direct numerical 1/2 integral of |p - phi|.
    tv = 0.5 * integral(lambda x: abs(density_formula(x, d) - stats.norm.pdf(x)), d)
    assert r.tv_gaussian == pytest.approx(tv, abs=1e-7)

    # Samples: the histogram is that of the samples, scaled to a density.
    assert r.samples.shape == (n,)
    counts, _ = np.histogram(r.samples, bins=r.edges)
    np.testing.assert_array_equal(r.counts, counts)
    np.testing.assert_allclose(r.heights * n * np.diff(r.edges), counts, rtol=1e-12)
    # Monte-Carlo check: each bin count is Binomial(n, p_bin) with p_bin from integrating the
    # closed-form density. Accept the central 1 - 2e-7 of that binomial: with 48 bins and 30
    # examples the chance of a false failure is at most 48 * 30 * 2e-7 < 3e-4 per run.
    p_bin = np.array([integrate.quad(density_formula, a, b, args=(d,), points=[x for x in (-d, d) if a < x < b])[0]
                      for a, b in zip(r.edges[:-1], r.edges[1:])])
    lo, hi = stats.binom.ppf(1e-7, n, p_bin), stats.binom.isf(1e-7, n, p_bin)
    assert np.all((lo <= counts) & (counts <= hi)), (counts, n * p_bin)
    # The module's CDF agrees with integrating the closed-form density (F(x) = 1/2 + integral from 0 to x) ...
    huber = w2.likelihood.Huber(torch.tensor(0.0, dtype=torch.float64), d)
    for x in (0.5 * d, d, 2 * d + 1):
        half = integrate.quad(density_formula, 0, min(x, d), args=(d,))[0] + \
            (integrate.quad(density_formula, d, x, args=(d,))[0] if x > d else 0.0)
        assert float(huber.cdf(torch.tensor(x, dtype=torch.float64))) == pytest.approx(0.5 + half, abs=1e-9)
    # ... and the whole sample is tested against it: under the model the KS p-value is uniform,
    # so it falls below 1e-6 once in a million.
    assert stats.kstest(r.samples, lambda x: huber.cdf(torch.tensor(x)).numpy()).pvalue > 1e-6


def test_w2_large_delta_tends_to_the_gaussian_small_delta_to_the_laplace():
    deltas = [0.1, 0.3, 0.6, 1.0, 1.5, 2.0, 3.0, 5.0]
    results = [w2.compute(delta=d, samples=200) for d in deltas]
    tv_gauss = [r.tv_gaussian for r in results]
    assert np.all(np.diff(tv_gauss) < 0) and tv_gauss[-1] < 1e-5   # falls to 0 as delta grows
    tail = [r.tail_mass for r in results]
    assert np.all(np.diff(tail) < 0) and tail[0] > 0.98             # tails take over as delta shrinks
    tv_laplace = [0.5 * integral(lambda x: abs(density_formula(x, d) - stats.laplace.pdf(x, scale=1 / d)), d)
                  for d in deltas]
    assert np.all(np.diff(tv_laplace) > 0) and tv_laplace[0] < 0.01  # ... and it becomes Laplace(1/delta)


def test_w2_samples_are_seeded():
    a, b = w2.compute(delta=0.7, samples=1000), w2.compute(delta=0.7, samples=1000)
    np.testing.assert_array_equal(a.samples, b.samples)
    assert not np.array_equal(a.samples, w2.compute(delta=0.8, samples=1000).samples)


def test_w2_bad_parameters_name_the_parameter_and_range():
    with pytest.raises(ValueError, match=r"delta must be a number in \[0.1, 5.0\], got 0"):
        w2.compute(delta=0)
    with pytest.raises(ValueError, match=r"samples must be a number in \[200, 10000\], got 100"):
        w2.compute(samples=100)
    with pytest.raises(ValueError, match=r"samples must be a whole number in \[200, 10000\], got 1000.5"):
        w2.compute(samples=1000.5)
    with pytest.raises(TypeError, match=r"unknown parameter\(s\) \['scale'\]"):
        w2.compute(scale=2.0)


def test_w2_live_view_moves_each_control_and_shows_what_compute_says():
    view = toolkit.LiveView(w2.EXPLORER)
    for name, values in {"delta": (0.3, 4.0), "samples": (400, 8000)}.items():
        for value in values:
            before = view.image.value
            view.set(**{name: value})
            expected = w2.compute(**view.params)
            assert view.params[name] == value
            assert view.readouts == w2.readouts(expected)
            ax_d, ax_s = view.figure.axes
            np.testing.assert_allclose(ax_d.lines[2].get_ydata(), expected.density)
            np.testing.assert_allclose(ax_s.lines[0].get_ydata(), expected.density)
            np.testing.assert_allclose(ax_s.patches[0].get_data().values, expected.heights)
            assert view.image.value != before


def test_w2_a_reused_figure_draws_exactly_what_a_fresh_one_draws():
    reused = toolkit.new_figure(w2.EXPLORER)
    toolkit.render(w2.EXPLORER, reused, w2.compute(delta=0.2, samples=9000))
    r2 = w2.compute(delta=2.5, samples=600)
    assert toolkit.render(w2.EXPLORER, reused, r2) == toolkit.render(w2.EXPLORER, toolkit.new_figure(w2.EXPLORER), r2)
    assert len(reused.axes) == 2
