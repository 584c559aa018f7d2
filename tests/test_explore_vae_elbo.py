"""W16 the ELBO of a VAE: KL in closed form, ELBO below log p(x), the decoder's image at z."""
import math
import warnings

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from torch.distributions import Independent, Normal, kl_divergence

from d2lcore.explore import toolkit
from d2lcore.explore import vae_elbo as w16
from explorer_strategies import control_values


@settings(max_examples=12, deadline=None)
@given(control_values(w16.CONTROLS))
def test_w16_bounds_and_parts_hold_over_the_whole_control_range(params):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        r = w16.compute(**params)
        w16.readouts(r)
    for value in (r.x, r.decoded, r.mu, r.sd, r.latents):
        assert np.isfinite(value).all()
    assert set(np.unique(r.x)) <= {0.0, 1.0} and (0 <= r.decoded).all() and (r.decoded <= 1).all()
    assert r.kl >= 0 and r.reconstruction > 0 and (r.sd > 0).all()
    assert r.neg_elbo == pytest.approx(r.reconstruction + r.kl, rel=1e-12)
    assert r.weighted == pytest.approx(r.reconstruction + params["kl_weight"] * r.kl, rel=1e-12)
    # Jensen on the same samples: log mean exp(w) >= mean(w), so -IWAE <= -ELBO exactly
    assert r.neg_log_px <= r.neg_elbo_mc + 1e-9
    np.testing.assert_array_equal(r.z, [params["z1"], params["z2"]])


def test_the_kl_is_the_closed_form_of_torch_distributions():
    model, images, _ = w16.default_model()
    r = w16.compute(image=3)
    with torch.no_grad():
        mu, log_var = model.encode(images[3:4].double().float())
    q = Independent(Normal(mu[0].double(), (0.5 * log_var[0].double()).exp()), 1)
    prior = Independent(Normal(torch.zeros(2, dtype=torch.float64), torch.ones(2, dtype=torch.float64)), 1)
    assert r.kl == pytest.approx(kl_divergence(q, prior).item(), rel=1e-9)
    # the integrand at z: log p(x | z) + log p(z) - log q(z | x), each by torch.distributions
    z = torch.tensor(r.z)
    assert r.point_log_prior == pytest.approx(prior.log_prob(z).item(), rel=1e-9)
    assert r.point_log_q == pytest.approx(q.log_prob(z).item(), rel=1e-9)


def test_the_default_model_is_a_vae_that_learned_something():
    # On the 8 images, the bound beats an independent-pixel model of mean 0.31 by a wide margin,
    # and the importance-weighted estimate is tighter than the ELBO on every image.
    results = [w16.compute(image=i) for i in range(w16.IMAGES)]
    p = 0.31
    baseline = -(784 * (p * math.log(p) + (1 - p) * math.log(1 - p)))  # about 486 nats
    assert np.mean([r.neg_elbo for r in results]) < baseline - 150
    assert all(r.neg_log_px < r.neg_elbo_mc for r in results)
    # the decoder at the posterior mean reconstructs better than at a far-away point
    r = results[0]
    near = w16.compute(image=0, z1=float(np.round(np.clip(r.mu[0], -3, 3), 1)),
                       z2=float(np.round(np.clip(r.mu[1], -3, 3), 1)))
    far = w16.compute(image=0, z1=-float(np.sign(r.mu[0]) or 1) * 3.0, z2=-float(np.sign(r.mu[1]) or 1) * 3.0)
    assert near.point_reconstruction < far.point_reconstruction


def test_a_passed_model_is_used_and_bad_images_are_named():
    model, images, labels = w16.default_model()
    ex = w16.explorer(model, images[:10], labels[:10])
    r = ex.compute(image=2)
    assert r.latents.shape == (10, 2)
    assert r.reconstruction == pytest.approx(w16.compute(image=2).reconstruction, rel=1e-12)
    with pytest.raises(ValueError, match=r"images must be \(N, 784\)"):
        w16.explorer(model, images[:3], labels[:3])
    with pytest.raises(TypeError, match="pass the images"):
        w16.explorer(model)


def test_w16_live_view_moves_every_control_and_draws_what_compute_says():
    view = toolkit.LiveView(w16.EXPLORER)
    for name, value in (("image", 5), ("z1", 2.0), ("z2", -1.5), ("kl_weight", 2.5)):
        before = view.image.value
        view.set(**{name: value})
        r = w16.compute(**view.params)
        assert view.readouts == w16.readouts(r) and view.image.value != before
        ax_b, ax_m, ax_i = view.figure.axes
        np.testing.assert_allclose([b.get_height() for b in ax_b.patches],
                                   [r.reconstruction, r.kl, r.kl_weight * r.kl, r.neg_elbo, r.neg_log_px])
        np.testing.assert_allclose(ax_m.lines[-1].get_xdata(), [r.z[0]])


def test_w16_static_view_steps_through_z1_without_a_kernel():
    html = toolkit.static_html(w16.EXPLORER)
    assert html.count("data:image/png;base64,") >= 13 and "://" not in html
