"""W17 forward and reverse diffusion: closed-form noising, the exact score, ancestral sampling."""
import math
import warnings

import numpy as np
import pytest
import torch
from hypothesis import given, settings

from d2lcore.explore import diffusion_steps as w17
from d2lcore.explore import toolkit
from explorer_strategies import control_values


@settings(max_examples=12, deadline=None)
@given(control_values(w17.CONTROLS))
def test_w17_is_finite_and_consistent_over_the_whole_control_range(params):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        r = w17.compute(**params)
        w17.readouts(r)
    for value in (r.forward, r.reverse, r.density, r.eps_true, r.eps_used):
        assert np.isfinite(value).all()
    assert 0 < r.abar <= 1 and r.abar == w17.abar(params["t"])
    np.testing.assert_allclose(r.eps_used, r.eps_true, atol=1e-12)  # the default sampler is the oracle
    if params["data"] == "1-D":
        assert np.trapezoid(r.density, r.grid) == pytest.approx(1.0, abs=2e-3)
        assert 0 <= r.distance < 0.12  # W1 of 2,000 oracle samples: sampling error and T = 200
    else:
        assert 0 <= r.distance <= 1 and r.modes.shape == (8,)


def test_the_marginal_is_t_applications_of_the_one_step_kernel():
    # q(x_t | x_0) from the one-step kernels N(sqrt(alpha_s) x, beta_s): the mean multiplies,
    # the variance follows v_s = alpha_s v_{s-1} + beta_s; both must equal the closed form.
    for t in (1, 7, 50, 200):
        mean, var = 1.0, 0.0
        for s in range(t):
            mean *= math.sqrt(float(w17.ALPHAS[s]))
            var = float(w17.ALPHAS[s]) * var + float(w17.BETAS[s])
        assert mean == pytest.approx(math.sqrt(w17.abar(t)), rel=1e-12)
        assert var == pytest.approx(1 - w17.abar(t), rel=1e-10)
    assert w17.abar(w17.STEPS) < 1e-4


def test_the_oracle_eps_is_minus_sqrt_one_minus_abar_times_the_autograd_score():
    for data in w17.DATASETS:
        x = w17.sample_data(data, 50, toolkit.generator(3)).requires_grad_(True)
        for t in (1, 30, 200):
            score, = torch.autograd.grad(w17.log_density(data, t, x).sum(), x)
            torch.testing.assert_close(w17.oracle_eps(data, x.detach(), t),
                                       -math.sqrt(1 - w17.abar(t)) * score, rtol=1e-9, atol=1e-12)


def test_the_oracle_sampler_recovers_the_data_and_a_gaussian_does_not():
    one = w17.compute(data="1-D", t=0)
    # W1 of 2,000 exact draws is about 0.03 (measured over seeds); the sampler stays within 0.06
    assert one.distance < 0.06
    g = toolkit.generator(4)
    gauss = torch.randn(2000, generator=g, dtype=torch.float64) * 2.05  # the data's sd
    assert w17.wasserstein_1d(gauss.numpy(), 0) > 5 * one.distance
    two = w17.compute(data="2-D", t=0)
    # 2,000 samples, 250 expected per mode: every mode within 5 binomial sds (about 75)
    assert np.all(np.abs(two.modes - 250) < 75) and two.distance < 0.03


def test_passed_models_drive_the_reverse_process():
    zero = lambda x, t: torch.zeros_like(x)  # noqa: E731 predicts no noise: samples stay wide
    ex = w17.explorer({"1-D": zero}, name="zero")
    r = ex.compute(data="1-D", t=0)
    assert r.sampler == "zero" and np.all(r.eps_used == 0)
    assert r.distance > w17.compute(data="1-D", t=0).distance
    with pytest.raises(ValueError, match="keyed by data set"):
        w17.explorer({"3-D": zero})


def test_w17_live_view_moves_every_control_and_draws_what_compute_says():
    view = toolkit.LiveView(w17.EXPLORER)
    for name, value in (("t", 0), ("data", "2-D"), ("t", 120)):
        before = view.image.value
        view.set(**{name: value})
        r = w17.compute(**view.params)
        assert view.readouts == w17.readouts(r) and view.image.value != before
        ax_f, ax_e, ax_r = view.figure.axes
        if r.data == "2-D":
            np.testing.assert_allclose(ax_r.collections[0].get_offsets(), r.reverse)


def test_w17_static_view_steps_through_t_without_a_kernel():
    html = toolkit.static_html(w17.EXPLORER)
    assert html.count("data:image/png;base64,") >= 13 and "://" not in html
