"""W11 a minibatch gradient is a sample mean: autograd identities, the 1/B law, the live view."""
import math
import warnings

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings

from d2lcore import likelihood
from d2lcore.explore import minibatch_gradient as w11
from d2lcore.explore import toolkit
from explorer_strategies import control_values

# Monte-Carlo tolerance. mc_variance is the mean of DRAWS = 2000 squared deviations d_m from the
# full gradient; its standard error is sd(d)/sqrt(DRAWS), estimated from the same draws (for a
# near-Gaussian minibatch mean this is sqrt(2/DRAWS) ≈ 3% of the variance; at small B the
# per-example gradients, quadratic in x, are skewed and heavy-tailed, and the estimate grows with
# their kurtosis instead of assuming it away). By the CLT over 2000 draws a miss beyond 5 standard
# errors has probability below 1e-6 per comparison. The draws are seeded, so this is deterministic;
# over w = -2, -1.5, ..., 6, B = 1, 2, 3, 5, 7, 10, 20, 50, 100, 150, 199, 200 and both modes the
# largest miss is about 2.7 standard errors (w = 4, B = 2, without replacement).
Z = 5.0


def closed_form_gradients(w: float) -> np.ndarray:
    """d/dw of -log N(y; w x, 1) = (w x - y) x, written out by hand."""
    x, y = w11.X.numpy(), w11.Y.numpy()
    return (w * x - y) * x / w11.NOISE_SIGMA**2


@settings(max_examples=30, deadline=None)
@given(control_values(w11.CONTROLS))
def test_w11_relations_hold_over_the_whole_control_range(params):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        r = w11.compute(**params)
    b, replace, n = params["batch_size"], params["replacement"], w11.N
    for array in (r.per_example, r.minibatch, r.mc_variance):
        assert np.isfinite(array).all()
    assert r.per_example.shape == (n,) and r.minibatch.shape == (w11.DRAWS,)
    # Per-example gradients from autograd match the hand-written derivative; the full-batch
    # gradient (autograd on the mean loss) is their mean.
    np.testing.assert_allclose(r.per_example, closed_form_gradients(params["w"]), rtol=1e-10, atol=1e-12)
    assert r.full_gradient == pytest.approx(r.per_example.mean(), rel=1e-10, abs=1e-12)
    assert r.per_example_variance == pytest.approx(np.var(r.per_example), rel=1e-12)
    # The law, written out independently of the module's theory().
    factor = 1.0 if replace else (n - b) / (n - 1)
    assert r.theory_at_b == pytest.approx(np.var(r.per_example) / b * factor, rel=1e-12, abs=1e-300)
    # Monte Carlo against the law at the chosen B, and at every grid size.
    if replace or b < n:
        assert abs(r.mc_variance_at_b - r.theory_at_b) <= Z * r.mc_standard_error_at_b
    else:  # without replacement the whole data set is one batch: no variance beyond rounding
        assert r.theory_at_b == 0 and r.mc_variance_at_b <= 1e-24 * r.per_example_variance
    if not replace or b > 1:
        # A minibatch gradient is unbiased: its mean over the draws is the full gradient.
        assert abs(r.minibatch.mean() - r.full_gradient) <= Z * math.sqrt(r.theory_at_b / w11.DRAWS) + 1e-12
    # Every drawn minibatch gradient lies between the smallest and largest per-example gradient.
    assert r.per_example.min() - 1e-9 <= r.minibatch.min() and r.minibatch.max() <= r.per_example.max() + 1e-9
    assert r.example_counts.sum() == n and r.minibatch_counts.sum() == w11.DRAWS


@pytest.mark.parametrize("replacement", [False, True])
def test_w11_monte_carlo_variance_follows_the_law_at_every_grid_size(replacement):
    for w in (-2.0, 2.0, 5.5):
        r = w11.compute(w=w, replacement=replacement)
        theory = np.var(r.per_example) / r.grid * (1.0 if replacement else (w11.N - r.grid) / (w11.N - 1))
        shown = r.grid < w11.N
        # The standard error of each grid point, from the same draws, as in the property test.
        means = np.cumsum(r.per_example[w11._INDEX[replacement]], axis=1)[:, r.grid - 1] / r.grid
        se = ((means - r.full_gradient) ** 2).std(axis=0, ddof=1) / math.sqrt(w11.DRAWS)
        assert (np.abs(r.mc_variance - theory)[shown] <= Z * se[shown]).all()
        # 1/B: a 200-fold batch has (about) a 200th of the variance with replacement (rel=0.25 is
        # over 3 standard errors of the ratio: about 7% at B = 1, 3% at B = 200).
        if replacement:
            assert (r.grid[0], r.grid[-1]) == (1, 200)
            assert r.mc_variance[0] / r.mc_variance[-1] == pytest.approx(200, rel=0.25)


def test_w11_full_batch_without_replacement_has_no_variance():
    r = w11.compute(batch_size=w11.N, replacement=False)
    assert r.theory_at_b == 0.0
    assert np.abs(r.minibatch - r.full_gradient).max() <= 1e-12 * np.abs(r.per_example).max()
    with_replacement = w11.compute(batch_size=w11.N, replacement=True)
    assert with_replacement.theory_at_b == pytest.approx(with_replacement.per_example_variance / w11.N)
    assert with_replacement.mc_variance_at_b > 0


def test_w11_gradient_is_the_registry_multiplier_times_the_mse_gradient():
    # Gaussian NLL = MSE / (2 sigma^2) + constant, so their gradients differ by the multiplier.
    w = torch.tensor(0.7, dtype=torch.float64, requires_grad=True)
    (mse_grad,) = torch.autograd.grad(F.mse_loss(w * w11.X, w11.Y), w)
    multiplier = likelihood.get("mse").multiplier(sigma=w11.NOISE_SIGMA)
    assert w11.compute(w=0.7).full_gradient == pytest.approx(multiplier * float(mse_grad), rel=1e-10)


def test_w11_bad_parameters_name_the_parameter_and_range():
    with pytest.raises(ValueError, match=r"batch_size must be a number in \[1, 200\], got 0"):
        w11.compute(batch_size=0)
    with pytest.raises(ValueError, match=r"batch_size must be a whole number in \[1, 200\], got 2.5"):
        w11.compute(batch_size=2.5)
    with pytest.raises(ValueError, match=r"w must be a number in \[-2.0, 6.0\], got 7"):
        w11.compute(w=7)
    with pytest.raises(ValueError, match="replacement must be True or False, got 1"):
        w11.compute(replacement=1)
    with pytest.raises(TypeError, match=r"unknown parameter\(s\) \['B'\]"):
        w11.compute(B=3)


def test_w11_live_view_moves_each_control_and_shows_what_compute_says():
    view = toolkit.LiveView(w11.EXPLORER)
    for name, values in {"batch_size": (3, 120), "replacement": (True, False), "w": (-1.5, 4.2)}.items():
        for value in values:
            before = view.image.value
            view.set(**{name: value})
            expected = w11.compute(**view.params)
            assert view.params[name] == value
            assert view.readouts == w11.readouts(expected)
            ax_e, ax_b, ax_v = view.figure.axes
            examples, minibatches = ax_e.patches[0], ax_b.patches[0]  # one StepPatch each
            np.testing.assert_allclose(examples.get_data().values, expected.example_counts)
            np.testing.assert_allclose(minibatches.get_data().values, expected.minibatch_counts)
            np.testing.assert_allclose(minibatches.get_data().edges, expected.edges)
            dots = next(line for line in ax_v.lines if line.get_marker() == "o" and line.get_markersize() == 4)
            shown = expected.grid <= (w11.N if expected.replacement else w11.N - 1)
            # the panel draws log10 values on linear axes labelled in powers of ten
            np.testing.assert_allclose(dots.get_xdata(), np.log10(expected.grid[shown]))
            np.testing.assert_allclose(dots.get_ydata(), np.log10(expected.mc_variance[shown]))
            assert [t.get_text() for t in ax_v.get_xticklabels()] == ["1", "10", "100"]
            assert all(t.get_text() == f"1e{round(v)}" for t, v in zip(ax_v.get_yticklabels(), ax_v.get_yticks()))
            assert view.image.value != before


def test_w11_reused_figure_draws_exactly_what_a_fresh_one_draws():
    reused = toolkit.new_figure(w11.EXPLORER)
    toolkit.render(w11.EXPLORER, reused, w11.compute(batch_size=w11.N, replacement=False, w=-2.0))
    r2 = w11.compute(batch_size=7, replacement=True, w=3.3)
    assert toolkit.render(w11.EXPLORER, reused, r2) == toolkit.render(w11.EXPLORER, toolkit.new_figure(w11.EXPLORER), r2)
    assert len(reused.axes) == 3
