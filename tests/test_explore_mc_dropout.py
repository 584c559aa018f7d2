"""W10 Monte-Carlo dropout: the spread is computed from the stored stochastic passes; for one
hidden layer it matches the closed-form variance over masks, which is convex in x."""
import numpy as np
import torch
from hypothesis import given, settings

from d2lcore.explore import mc_dropout as w10
from d2lcore.explore import toolkit
from explorer_strategies import control_values


@settings(max_examples=12, deadline=None)
@given(control_values(w10.CONTROLS))
def test_w10_spread_is_computed_from_the_stored_passes(params):
    r = w10.compute(**params)
    _, stored, _ = w10.trained(params["drop"], params["depth"])
    t = params["passes"]
    np.testing.assert_array_equal(r.samples, stored[:t])
    assert r.samples.shape == (t, len(w10.GRID)) and np.isfinite(r.samples).all()
    np.testing.assert_allclose(r.mean, stored[:t].mean(axis=0), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(r.sd, np.sqrt(((stored[:t] - r.mean) ** 2).mean(axis=0)), rtol=1e-9, atol=1e-12)
    where = w10.regions()
    assert r.sd_data == r.sd[where["data"]].mean() and r.sd_gap == r.sd[where["gap"]].max()
    assert r.sd_far == r.sd[where["far"]].mean()
    if t == 1:
        assert np.all(r.sd == 0)


def test_w10_one_hidden_layer_matches_the_closed_form_and_is_convex():
    for drop in w10.DROPS:
        net, stored, _ = w10.trained(drop, 1)
        exact = w10.exact_sd_one_layer(net)
        # The closed form is the variance over masks: an independent check by 4,000 passes.
        # The sample sd of T passes has relative s.e. about sqrt((kurtosis - 1) / T) / 2,
        # 0.02 for a kurtosis up to 7.4 at T = 4,000 (these sums of Bernoulli terms are much
        # closer to normal, kurtosis near 3); 0.1 is 5 s.e. (false alarm below 1e-6).
        many = w10.stochastic_passes(net, count=4_000, seed=99)
        assert np.all(np.abs(many.std(axis=0) - exact) <= 0.1 * exact + 1e-6)
        # Convex variance: second differences on the uniform grid are >= 0 (to rounding) ...
        var = exact**2
        assert np.all(np.diff(var, 2) >= -1e-6 * var.max())
        # ... so inside the gap it never exceeds the larger value at the gap's edges.
        edges = [np.argmin(np.abs(w10.GRID - e)) for e in w10.GAP]
        gap = w10.regions()["gap"]
        assert var[gap].max() <= max(var[edges[0]], var[edges[1]]) * (1 + 1e-9)


def test_w10_training_is_deterministic_and_eval_mode_is_the_mean_network():
    x, y = w10.dataset()
    assert x.shape == (w10.N_TRAIN, 1) and ((x >= -2.5) & (x <= 2.5) & (x.abs() >= 1)).all()
    a = w10.train(w10.DropoutMLP(1, 0.5), x, y, steps=20)
    b = w10.train(w10.DropoutMLP(1, 0.5), x, y, steps=20)
    for pa, pb in zip(a.parameters(), b.parameters()):
        assert torch.equal(pa, pb)
    # one hidden layer: the mean over masks of a pass is the eval-mode network (linear in the mask)
    passes = w10.stochastic_passes(a, count=4_000, seed=5)
    with torch.no_grad():
        det = a(torch.tensor(w10.GRID, dtype=torch.float32)[:, None])[:, 0].double().numpy()
    se = passes.std(axis=0) / np.sqrt(4_000)
    assert np.all(np.abs(passes.mean(axis=0) - det) <= 5 * se + 1e-5)  # 5 s.e.: false alarm < 1e-6


def test_live_view_moves_each_control_and_shows_what_compute_says():
    view = toolkit.LiveView(w10.EXPLORER)
    for name, values in {"passes": (200, 1, 30), "drop": (0.5, 0.1)}.items():
        for value in values:
            before = view.image.value
            view.set(**{name: value})
            r = w10.compute(**view.params)
            assert view.readouts == w10.readouts(r)
            ax_f, ax_s = view.figure.axes
            np.testing.assert_array_equal(ax_s.lines[0].get_ydata(), r.sd)
            assert view.image.value != before


def test_static_view_steps_through_the_passes_without_a_kernel():
    html = toolkit.static_html(w10.EXPLORER, depth=1)
    assert html.count("data:image/png;base64,") >= 20 and "http" not in html.split("<script>")[1]
