"""W14 convolution and pooling: the maps are F.conv2d and torch's pooling, the receptive field
is what autograd says the chosen unit depends on, and pooling's invariance is to shifts smaller
than its window."""
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings

from d2lcore.explore import convolution_pooling as w14
from d2lcore.explore import toolkit
from explorer_strategies import control_values


def _kernel_of(params):
    if params["kernel"] in w14.FIXED:
        return w14.FIXED[params["kernel"]]
    return (w14.RANDOM if params["kernel"] == "random" else w14.GABOR)[params["kernel_number"]]


def _unit_gradient(image, kernel, pool, p, unit):
    """d(pooled unit)/d(input), by autograd through torch's own layers."""
    x = torch.tensor(image, requires_grad=True)
    fmap = F.conv2d(x[None, None], torch.tensor(kernel)[None, None], padding=kernel.shape[0] // 2)
    pooled = fmap if p == 1 else (F.max_pool2d(fmap, p) if pool == "max" else F.avg_pool2d(fmap, p))
    pooled[0, 0][unit].backward()
    return x.grad.numpy()


@settings(max_examples=12, deadline=None)
@given(control_values(w14.CONTROLS))
def test_w14_relations_hold_over_the_whole_control_range(params):
    r = w14.compute(**params)
    for value in (r.feature, r.pooled, r.change, r.unit_value, r.change_with_pooling, r.change_without_pooling):
        assert np.isfinite(value).all()
    kernel, p, s = _kernel_of(params), params["pool_size"], params["shift"]
    np.testing.assert_array_equal(r.kernel, kernel)
    original = w14.SHAPES[params["image"]]
    np.testing.assert_array_equal(r.image[:, s:], original[:, : 28 - s])
    assert not r.image[:, :s].any()
    # the feature map is "same" cross-correlation, as F.conv2d computes it (scipy-free oracle: unfold)
    padded = F.pad(torch.tensor(r.image)[None, None], (kernel.shape[0] // 2,) * 4)
    patches = F.unfold(padded, kernel.shape[0])[0]                       # (k*k, 784)
    oracle = (torch.tensor(kernel).flatten() @ patches).reshape(28, 28).numpy()
    np.testing.assert_allclose(r.feature, oracle, atol=1e-12)
    # pooled maps are torch's pooling, of size 28 // p
    assert r.pooled.shape == (28 // p, 28 // p)
    if p == 1:
        np.testing.assert_array_equal(r.pooled, r.feature)
        assert r.change_with_pooling == r.change_without_pooling
    else:
        layer = torch.nn.MaxPool2d(p) if params["pool"] == "max" else torch.nn.AvgPool2d(p)
        np.testing.assert_allclose(r.pooled, layer(torch.tensor(r.feature)[None, None])[0, 0].numpy(), atol=1e-12)
    if s == 0:
        assert r.change_with_pooling == r.change_without_pooling == 0
    # the unit depends on no input pixel outside its receptive field
    grad = _unit_gradient(r.image, kernel, params["pool"], p, r.unit)
    r0, r1, c0, c1 = r.field
    outside = np.ones_like(grad, dtype=bool)
    outside[r0 : r1 + 1, c0 : c1 + 1] = False
    assert not grad[outside].any()
    assert r.unit_value == r.pooled[r.unit]
    assert 0 <= r.unit[0] < r.pooled.shape[0] and 0 <= r.unit[1] < r.pooled.shape[1]


def test_w14_receptive_field_is_tight_for_average_pooling_and_a_dense_kernel():
    # every pixel of the field matters when no kernel weight is zero and pooling averages
    image = np.random.default_rng(0).random((28, 28))
    for k in (3, 5):
        kernel = np.random.default_rng(k).random((k, k)) + 0.1
        for p in (1, 2, 3, 4):
            for unit in ((0, 0), (3, 5), (28 // p - 1, 28 // p - 1)):
                grad = _unit_gradient(image, kernel, "average", p, unit)
                r0, r1, c0, c1 = w14.receptive_field(*unit, k, p)
                assert (grad[r0 : r1 + 1, c0 : c1 + 1] != 0).all()
                assert (r1 - r0 + 1) <= p + k - 1


def test_w14_a_shift_by_the_window_moves_the_pooled_map_by_one_unit():
    for image in range(6):
        for p in (2, 4):
            r = w14.compute(image=image, kernel="random", pool_size=p, shift=p)
            np.testing.assert_allclose(r.pooled[:, 1:], r.pooled_original[:, :-1], atol=1e-12)
            assert r.change_with_pooling > 0.1   # not invariant at all


def test_w14_pooling_damps_a_one_pixel_shift_on_average_not_always():
    pairs = np.array([[r.change_without_pooling, r.change_with_pooling]
                      for r in (w14.compute(image=i, kernel="random", kernel_number=n, shift=1)
                                for i in range(6) for n in range(6))])
    damped = pairs[:, 1] < pairs[:, 0]
    assert damped.mean() > 0.7 and not damped.all()      # 27 of 36 here
    assert pairs[:, 1].mean() < 0.8 * pairs[:, 0].mean()


def test_w14_default_kernels_and_images():
    assert w14.GABOR.shape == (6, 5, 5) and w14.RANDOM.shape == (6, 5, 5) and w14.SHAPES.shape == (6, 28, 28)
    np.testing.assert_allclose(np.linalg.norm(w14.GABOR.reshape(6, -1), axis=1), 1)
    np.testing.assert_allclose(w14.GABOR.reshape(6, -1).sum(axis=1), 0, atol=1e-12)
    assert w14.SHAPES.min() >= 0 and w14.SHAPES.max() <= 1
    # shapes stay 5 pixels from every border, so a shift of up to 4 loses nothing
    assert not w14.SHAPES[:, :5].any() and not w14.SHAPES[:, :, :5].any()
    assert not w14.SHAPES[:, 23:].any() and not w14.SHAPES[:, :, 23:].any()
    assert all(w14.SHAPES[i].sum() > 5 for i in range(6))
    np.testing.assert_allclose(w14.compute(kernel="blur").kernel.sum(), 1)   # a blur keeps the mean


def test_w14_takes_a_networks_kernels_and_images():
    conv = torch.nn.Conv2d(1, 6, 5)
    images = torch.rand(6, 1, 28, 28)
    ex = w14.explorer(kernels=conv.weight, images=images, image_names=[f"img{i}" for i in range(6)])
    r = ex.compute(kernel="learned", kernel_number=3, image=4)
    np.testing.assert_allclose(r.kernel, conv.weight[3, 0].detach().double().numpy())
    np.testing.assert_allclose(r.original, images[4, 0].double().numpy())
    assert r.image_name == "img4"
    view = toolkit.LiveView(ex)
    view.set(kernel="learned", kernel_number=5)
    assert view.readouts == w14.readouts(ex.compute(**view.params))
    with pytest.raises(ValueError, match=r"kernels must have shape \(6, k, k\)"):
        w14.explorer(kernels=torch.zeros(6, 1, 4, 4))
    with pytest.raises(ValueError, match=r"images must have shape \(6, 28, 28\)"):
        w14.explorer(images=torch.zeros(5, 28, 28))


def test_live_view_moves_each_control_and_shows_what_compute_says():
    view = toolkit.LiveView(w14.EXPLORER)
    # every control moves at least once (a kernel number only matters for random/learned)
    moves = [("kernel", "learned"), ("kernel_number", 4), ("image", 5), ("pool", "average"),
             ("pool_size", 3), ("shift", 3), ("row", 2), ("col", 27)]
    for name, value in moves:
        if True:
            before = view.image.value
            view.set(**{name: value})
            r = w14.compute(**view.params)
            assert view.params[name] == value and view.readouts == w14.readouts(r)
            images = [ax.images[0].get_array() for ax in view.figure.axes]
            np.testing.assert_array_equal(images[0], r.image)
            np.testing.assert_array_equal(images[2], r.feature)
            np.testing.assert_array_equal(images[3], r.pooled)
            assert view.image.value != before


def test_static_view_steps_through_the_shift_without_a_network():
    html = toolkit.static_html(w14.EXPLORER)
    assert html.count('"img": "data:image/png;base64,') == 5      # shifts 0..4
    assert "http" not in html.replace("http://www.w3.org", "")
