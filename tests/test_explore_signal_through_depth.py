"""W13 signal through depth: the variance recursion, vanishing and exploding signals, no NaN."""
import math
import warnings

import numpy as np
import pytest
import torch
from hypothesis import given, settings

from d2lcore.explore import signal_through_depth as w13
from d2lcore.explore import toolkit
from explorer_strategies import control_values

N = w13.N_UNITS


def _second_moments(activation, init, s, depth):
    acts, _ = w13.forward_backward(activation, init, s, depth)
    return acts.pow(2).mean(dim=(1, 2)).numpy()


@settings(max_examples=40, deadline=None)
@given(control_values(w13.CONTROLS))
def test_w13_everything_is_finite_over_the_whole_control_range(params):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        r = w13.compute(**params)
        readouts = w13.readouts(r)
    depth = params["depth"]
    assert r.float64_overflow == ""  # float64 holds every value the controls can reach
    for array in (r.act_std, r.grad_std, r.act_predicted, r.grad_predicted, r.hist_fractions, r.zero_fraction):
        assert np.isfinite(array).all()
    assert r.act_std.shape == r.grad_std.shape == (depth,)
    assert (r.act_std >= w13.TINY).all() and (r.act_std <= w13.HUGE).all()
    assert (r.grad_std >= w13.TINY).all() and (r.grad_std <= w13.HUGE).all()
    assert r.grad_std[-1] == pytest.approx(1.0, abs=0.05)  # dL/dh_depth = r, standard normal
    # Each histogram holds the layer's values: all of them for tanh and the sigmoid, the
    # positive ones up to RELU_RANGE std (plus the exact zeros) for ReLU.
    totals = r.hist_fractions.sum(axis=1) + r.zero_fraction
    if params["activation"] == "relu":
        assert ((totals <= 1 + 1e-12) & (totals > 0.97)).all()
    else:
        np.testing.assert_allclose(totals, 1.0, atol=1e-12)
    assert list(r.hist_layers) == sorted(set(r.hist_layers)) and r.hist_layers[-1] == depth
    assert not any(word in text.lower() for text in readouts.values() for word in ("nan", "inf"))
    assert math.isclose(r.factor, w13.second_moment_factor(params["activation"], r.weight_variance), rel_tol=1e-12)


@pytest.mark.parametrize("activation", w13.ACTIVATIONS)
@pytest.mark.parametrize("init", w13.INITS)
def test_the_hand_written_backward_pass_is_autograd(activation, init):
    depth, s = 6, 0.2
    acts, grads = w13.forward_backward(activation, init, s, depth)
    pool, scale = w13.weights(init, s)
    h, r = w13._inputs()
    h = h.clone().requires_grad_(True)
    hs = []
    for layer in range(depth):
        h = {"relu": torch.relu, "tanh": torch.tanh, "sigmoid": torch.sigmoid}[activation](h @ (pool[layer].double() * scale).T)
        h.retain_grad()
        hs.append(h)
    (hs[-1] * r).sum().backward()
    # (h W^T) s and h (W s)^T round differently: entries that nearly cancel differ by about
    # 1e-16 of the tensor's scale, so the absolute tolerance follows the scale
    torch.testing.assert_close(acts, torch.stack(hs).detach(), rtol=1e-10, atol=1e-12 * acts.abs().max().item())
    torch.testing.assert_close(grads, torch.stack([h.grad for h in hs]), rtol=1e-10,
                               atol=1e-12 * grads.abs().max().item())


def test_the_weights_have_the_variances_of_their_schemes():
    for init in w13.INITS:
        pool, scale = w13.weights(init, 0.05)
        w = (pool.double() * scale).flatten()
        target = w13.weight_variance(init, 0.05)
        # 4 million draws: the relative standard error of a variance is at most sqrt(2 / 4e6)
        # = 0.0007 (Gaussian; smaller for the uniform); 5 standard errors, false alarm below 1e-6.
        assert abs(w.var().item() / target - 1) < 5 * math.sqrt(2 / w.numel())
        assert abs(w.mean().item()) < 5 * math.sqrt(target / w.numel())
    pool, scale = w13.weights("pytorch", 0.0)
    assert (pool.double() * scale).abs().max() <= 1 / math.sqrt(N)  # U(-1/sqrt(n), 1/sqrt(n)), as nn.Linear


def test_he_with_relu_keeps_the_second_moment_within_its_sampling_spread():
    # For one input and Gaussian weights, each layer multiplies the second moment by an
    # independent factor of mean 1 and variance 5/n: log(second moment) takes a random walk
    # with drift about -5/(2n) per layer and standard deviation sqrt(5/n) per layer. A batch
    # spreads no more than one input. 4 standard deviations: false alarm below 1e-4 per depth.
    m = _second_moments("relu", "he", 0.0, w13.MAX_DEPTH)
    for depth in (2, 10, 25, 50, 100):
        steps = depth - 1
        drift, sd = -2.5 * steps / N, math.sqrt(5 * steps / N)
        assert abs(math.log(m[depth - 1] / m[0]) - drift) < 4 * sd, (depth, m[depth - 1] / m[0])
    # The same recursion with any N(0, s^2): the factor is n s^2 / 2 per layer.
    for s in (0.01, 0.05, 0.3, 2.0):
        m = _second_moments("relu", "normal", s, 50)
        predicted = 49 * math.log(N * s**2 / 2) - 2.5 * 49 / N
        assert abs(math.log(m[-1] / m[0]) - predicted) < 4 * math.sqrt(5 * 49 / N)


def test_relu_is_homogeneous_so_scaling_the_weights_scales_layer_l_by_the_scale_to_the_l():
    he = w13.compute(init="he", depth=40)
    s = 0.3
    scaled = w13.compute(init="normal", log10_s=math.log10(s), depth=40)
    ratio = s / math.sqrt(2 / N)
    np.testing.assert_allclose(np.log(scaled.act_std / he.act_std), he.layers * math.log(ratio), rtol=1e-9)
    # He is N(0, s^2) at s = sqrt(2 / n), drawn from the same pool.
    a, g = w13.forward_backward("tanh", "he", 0.0, 12)
    b, h = w13.forward_backward("tanh", "normal", math.sqrt(2 / N), 12)
    assert torch.equal(a, b) and torch.equal(g, h)


def test_tiny_s_kills_the_signal_and_large_s_explodes_it():
    for activation in ("relu", "tanh"):
        tiny = w13.compute(activation=activation, init="normal", log10_s=-3.0, depth=50)
        assert tiny.act_ratio < 1e-80 and tiny.grad_ratio < 1e-80
        assert "underflow float32" in tiny.act_float32 and "underflow float32" in tiny.grad_float32
    big = w13.compute(activation="relu", init="normal", log10_s=1.0, depth=100)
    assert big.act_ratio > 1e150 and big.grad_ratio > 1e150
    first = int(np.argmax(big.act_std > w13.FLOAT32_MAX)) + 1
    assert big.act_float32 == f"would overflow float32 (std above 3.4e38) at layer {first}"
    assert "overflow" in w13.readouts(big)["activation std"]
    # tanh cannot explode forwards (|tanh| < 1), but its gradients can: saturated yet chaotic.
    chaotic = w13.compute(activation="tanh", init="normal", log10_s=0.0, depth=60)
    assert chaotic.act_std.max() < 1 and chaotic.grad_ratio > 1e10
    # The sigmoid's gradient shrinks at least as fast as its bound (sigmoid' <= 1/4) says.
    for init in ("pytorch", "xavier", "he"):
        sig = w13.compute(activation="sigmoid", init=init, depth=30)
        assert sig.grad_ratio <= sig.factor ** (29 / 2) * 1.5


def test_the_default_shrinks_a_relu_signal_by_about_sqrt_one_sixth_per_layer():
    r = w13.compute(init="pytorch", depth=100)
    per_layer = (r.act_std[-1] / r.act_std[0]) ** (1 / 99)
    # log per layer: drift -5/(4n) (for the std) and sd sqrt(5/n)/2/sqrt(99); 4 sd
    assert abs(math.log(per_layer) - 0.5 * math.log(1 / 6)) < 4 * 0.5 * math.sqrt(5 / N / 99) + 1.25 / N
    x = w13.compute(init="xavier", depth=100)
    assert abs(math.log((x.act_std[-1] / x.act_std[0]) ** (1 / 99)) - 0.5 * math.log(1 / 2)) \
        < 4 * 0.5 * math.sqrt(5 / N / 99) + 1.25 / N


def test_w13_bad_parameters_name_the_control():
    with pytest.raises(ValueError, match=r"activation must be one of \['relu', 'tanh', 'sigmoid'\], got 'gelu'"):
        w13.compute(activation="gelu")
    with pytest.raises(ValueError, match=r"depth must be a number in \[1, 100\], got 0"):
        w13.compute(depth=0)
    with pytest.raises(ValueError, match=r"log10_s must be a number in \[-3.0, 1.0\], got 2"):
        w13.compute(log10_s=2)
    with pytest.raises(ValueError, match=r"init must be one of"):
        w13.compute(init="orthogonal")


def test_live_view_moves_each_control_and_shows_what_compute_says():
    view = toolkit.LiveView(w13.EXPLORER)
    moves = {"depth": (12, 80), "init": ("normal", "pytorch", "xavier", "normal"), "log10_s": (-2.5, 0.5),
             "activation": ("tanh", "sigmoid", "relu")}
    for name, values in moves.items():
        for value in values:
            before = view.image.value
            view.set(**{name: value})
            r = w13.compute(**view.params)
            assert view.params[name] == value
            assert view.readouts == w13.readouts(r)
            ax_h, ax_s = view.figure.axes
            np.testing.assert_array_equal(ax_s.lines[0].get_ydata(), np.log10(r.act_std))
            np.testing.assert_array_equal(ax_s.lines[1].get_ydata(), np.log10(r.grad_std))
            for patch, fractions in zip(ax_h.patches, r.hist_fractions):
                assert patch.get_data().values.tolist() == fractions.tolist()
            assert view.image.value != before


def test_a_reused_figure_draws_exactly_what_a_fresh_one_draws():
    reused = toolkit.new_figure(w13.EXPLORER)
    toolkit.render(w13.EXPLORER, reused, w13.compute(activation="tanh", init="normal", log10_s=0.5, depth=90))
    r2 = w13.compute(activation="sigmoid", depth=7)
    assert toolkit.render(w13.EXPLORER, reused, r2) == toolkit.render(w13.EXPLORER, toolkit.new_figure(w13.EXPLORER), r2)
    assert len(reused.axes) == 2


def test_w13_static_view_steps_through_s():
    html = toolkit.static_html(w13.EXPLORER, init="normal")
    frames = w13.CONTROLS[3].frames(w13.EXPLORER.frame_count)
    # He's s = sqrt(2 / 200) = 0.1 is one of the frames
    assert len(frames) == 21 and -1.0 in frames and frames[0] == -3.0 and frames[-1] == 1.0
    assert math.isclose(math.sqrt(2 / N), 0.1)
    assert f'data-frames="{len(frames) + (-2.0 not in frames)}"' in html
