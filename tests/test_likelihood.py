"""Every loss-likelihood relation of WIDGETS.md, checked against torch on random inputs."""
import math

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import integrate, stats
from torch.distributions import Bernoulli, Categorical, Laplace, Normal, StudentT

from d2lcore import likelihood as lk

settings.register_profile("d2lcore", max_examples=40, deadline=None)
settings.load_profile("d2lcore")

D = torch.float64
scales = st.floats(0.05, 20.0)
deltas = st.floats(0.05, 10.0)
seeds = st.integers(0, 2**31 - 1)


def regression_pair(seed, n=50):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, 1, generator=g, dtype=D) * 3, torch.randn(n, 1, generator=g, dtype=D) * 3


@given(seeds, scales)
def test_gaussian_nll_is_scaled_mse_plus_constant(seed, sigma):
    pred, y = regression_pair(seed)
    direct = -Normal(pred, sigma).log_prob(y)
    formula = (y - pred) ** 2 / (2 * sigma**2) + math.log(sigma) + 0.5 * math.log(2 * math.pi)
    torch.testing.assert_close(direct, formula)
    mse = lk.get("mse")
    torch.testing.assert_close(mse.nll_from_loss(F.mse_loss(pred, y), sigma=sigma), direct.mean())
    torch.testing.assert_close(mse.nll(pred, y, sigma=sigma), direct.mean())


@given(seeds)
def test_unit_gaussian_mean_nll_is_half_mse_plus_half_log_2pi(seed):
    pred, y = regression_pair(seed)
    torch.testing.assert_close(-Normal(pred, 1.0).log_prob(y).mean(),
                               0.5 * F.mse_loss(pred, y) + 0.5 * math.log(2 * math.pi))


@given(seeds, scales)
def test_laplace_nll_is_scaled_l1_plus_log_2b(seed, b):
    pred, y = regression_pair(seed)
    direct = -Laplace(pred, b).log_prob(y)
    torch.testing.assert_close(direct, (y - pred).abs() / b + math.log(2 * b))
    torch.testing.assert_close(lk.get("l1").nll_from_loss(F.l1_loss(pred, y), b=b), direct.mean())


@given(deltas)
def test_huber_normaliser_matches_numerical_integration(delta):
    density = lambda r: math.exp(-float(lk.huber_rho(torch.tensor(r, dtype=D), delta)))  # noqa: E731
    # Integrated piece by piece: quad is unreliable across the kinks at +-delta.
    numeric = sum(integrate.quad(density, a, b, limit=200, epsabs=1e-13)[0]
                  for a, b in ((-math.inf, -delta), (-delta, delta), (delta, math.inf)))
    assert float(lk.huber_log_normalizer(torch.tensor(delta, dtype=D))) == pytest.approx(math.log(numeric), rel=1e-7, abs=1e-9)


@given(seeds, deltas)
def test_huber_loss_is_delta_times_smooth_l1_and_the_huber_nll(seed, delta):
    pred, y = regression_pair(seed)
    huber = torch.nn.HuberLoss(delta=delta)(pred, y)
    torch.testing.assert_close(huber, delta * torch.nn.SmoothL1Loss(beta=delta)(pred, y))
    direct = -lk.Huber(pred, delta).log_prob(y).mean()
    torch.testing.assert_close(lk.get("huber").nll_from_loss(huber, delta=delta), direct)


@pytest.mark.parametrize("delta,scale", [(0.1, 1.0), (1.0, 1.0), (1.345, 2.5), (5.0, 0.3)])
def test_huber_density_integrates_to_one_and_its_moments_are_right(delta, scale):
    h = lk.Huber(torch.tensor(0.7, dtype=D), delta, scale)
    pdf = lambda x: math.exp(float(h.log_prob(torch.tensor(x, dtype=D))))  # noqa: E731
    assert integrate.quad(pdf, -math.inf, math.inf, limit=200)[0] == pytest.approx(1.0, abs=1e-8)
    var = integrate.quad(lambda x: (x - 0.7) ** 2 * pdf(x), -math.inf, math.inf, limit=200)[0]
    assert float(h.variance) == pytest.approx(var, rel=1e-6)
    ent = integrate.quad(lambda x: -pdf(x) * math.log(pdf(x)) if pdf(x) > 0 else 0.0, -math.inf, math.inf, limit=200)[0]
    assert float(h.entropy()) == pytest.approx(ent, rel=1e-6)
    for x in (-3.0, -0.5, 0.7, 1.2, 4.0):
        assert float(h.cdf(torch.tensor(x, dtype=D))) == pytest.approx(integrate.quad(pdf, -math.inf, x, limit=200)[0], abs=1e-8)


@pytest.mark.parametrize("delta", [0.2, 1.0, 3.0])
def test_huber_samples_follow_the_density(delta):
    torch.manual_seed(0)
    h = lk.Huber(torch.tensor(0.0, dtype=D), delta)
    sample = h.sample((20000,)).numpy()
    result = stats.kstest(sample, lambda x: h.cdf(torch.as_tensor(x, dtype=D)).numpy())
    assert result.pvalue > 0.001, result  # a correct sampler fails this one time in a thousand


def test_huber_tends_to_gaussian_for_large_delta_and_has_laplace_tails():
    x = torch.linspace(-3, 3, 61, dtype=D)
    gauss = Normal(torch.tensor(0.0, dtype=D), 1.0).log_prob(x)
    torch.testing.assert_close(lk.Huber(torch.tensor(0.0, dtype=D), 8.0).log_prob(x), gauss, atol=1e-12, rtol=0)
    for delta in (0.1, 0.5, 2.0):  # beyond delta the log-density falls with slope exactly -delta
        h = lk.Huber(torch.tensor(0.0, dtype=D), delta)
        far = torch.tensor([delta + 1, delta + 2], dtype=D)
        assert float(h.log_prob(far[0]) - h.log_prob(far[1])) == pytest.approx(delta)
    # small delta: the shape approaches a Laplace with scale 1/delta
    h, lap = lk.Huber(torch.tensor(0.0, dtype=D), 0.01), Laplace(0.0, 100.0)
    ratio = h.log_prob(torch.tensor([50.0, 200.0], dtype=D)) - lap.log_prob(torch.tensor([50.0, 200.0], dtype=D))
    assert float(ratio[0] - ratio[1]) == pytest.approx(0.0, abs=1e-3)


@given(seeds, st.integers(2, 8), st.integers(1, 30))
def test_cross_entropy_is_categorical_nll(seed, classes, n):
    g = torch.Generator().manual_seed(seed)
    logits = torch.randn(n, classes, generator=g, dtype=D) * 4
    y = torch.randint(0, classes, (n,), generator=g)
    expected = -Categorical(logits=logits).log_prob(y).mean()
    torch.testing.assert_close(F.cross_entropy(logits, y), expected)
    torch.testing.assert_close(lk.get("cross_entropy").loss(logits, y), expected)
    torch.testing.assert_close(lk.nll("cross_entropy", logits, y), expected)


@given(seeds, st.integers(2, 8), st.integers(1, 20))
def test_soft_label_cross_entropy_is_entropy_plus_kl(seed, classes, n):
    g = torch.Generator().manual_seed(seed)
    logits = torch.randn(n, classes, generator=g, dtype=D) * 3
    p = torch.softmax(torch.randn(n, classes, generator=g, dtype=D) * 3, -1)
    q = torch.softmax(logits, -1)
    decomposed = (lk.entropy(p) + lk.kl_divergence(p, q)).mean()
    torch.testing.assert_close(F.cross_entropy(logits, p), decomposed)
    torch.testing.assert_close(lk.soft_cross_entropy(logits, p), decomposed)
    torch.testing.assert_close(lk.cross_entropy(p, q), lk.entropy(p) + lk.kl_divergence(p, q))
    assert (lk.kl_divergence(p, q) >= -1e-12).all() and (lk.cross_entropy(p, q) >= lk.entropy(p) - 1e-12).all()


@given(seeds, st.integers(1, 40))
def test_bce_with_logits_is_bernoulli_nll(seed, n):
    g = torch.Generator().manual_seed(seed)
    logits = torch.randn(n, generator=g, dtype=D) * 5
    y = torch.randint(0, 2, (n,), generator=g).double()
    expected = -Bernoulli(logits=logits).log_prob(y).mean()
    torch.testing.assert_close(torch.nn.BCEWithLogitsLoss()(logits, y), expected)
    torch.testing.assert_close(lk.get("bce").loss(logits, y), expected)


@given(seeds, st.integers(1, 40))
def test_bce_with_soft_targets_is_a_bernoulli_cross_entropy_not_a_likelihood(seed, n):
    g = torch.Generator().manual_seed(seed)
    logits = torch.randn(n, generator=g, dtype=D) * 5
    t = torch.rand(n, generator=g, dtype=D)
    q = torch.sigmoid(logits)
    entropy = -(t * t.log() + (1 - t) * (1 - t).log())
    kl = t * (t / q).log() + (1 - t) * ((1 - t) / (1 - q)).log()
    # loss accepts soft targets: it is H(t, q) = H(t) + KL(t || q), never below H(t).
    torch.testing.assert_close(lk.get("bce").loss(logits, t), (entropy + kl).mean())
    # nll refuses them, saying why, since no Bernoulli outcome is 0.3.
    if ((t > 0) & (t < 1)).any():
        with pytest.raises(ValueError, match="exactly 0 or 1; soft targets in between give a Bernoulli cross-entropy"):
            lk.get("bce").nll(logits, t)
    hard = (t > 0.5).double()
    torch.testing.assert_close(lk.get("bce").nll(logits, hard), lk.get("bce").loss(logits, hard))


def test_validate_checks_one_batch_and_returns_the_plain_loss():
    pair = lk.get("cross_entropy")
    logits, labels = torch.randn(4, 3), torch.tensor([0, 2, 1, 2])
    plain = pair.validate(logits, labels)
    assert plain is pair.torch_loss  # no checks (and no host sync) left in the training loss
    torch.testing.assert_close(plain(logits, labels), pair.loss(logits, labels))
    with pytest.raises(ValueError, match=r"class labels must lie in \[0, 3\)"):
        pair.validate(logits, torch.tensor([0, 3, 1, 2]))
    gaussian = lk.get("mse").validate(torch.zeros(3, 1), torch.ones(3, 1), sigma=2.0)
    torch.testing.assert_close(gaussian(torch.zeros(3, 1), torch.ones(3, 1)), torch.tensor(1.0))
    with pytest.raises(ValueError, match="prediction shape"):
        lk.get("mse").validate(torch.zeros(3), torch.ones(3, 1))


@given(seeds, st.floats(1.0, 30.0), scales)
def test_student_t_registry_relation(seed, df, scale):
    pred, y = regression_pair(seed)
    pair = lk.get("student_t")
    loss = pair.loss(pred, y, df=df, scale=scale)
    torch.testing.assert_close(pair.nll_from_loss(loss, df=df, scale=scale), -StudentT(df, pred, scale).log_prob(y).mean())


@given(st.lists(st.floats(-100, 100), min_size=1, max_size=30))
def test_constant_minimisers_mean_and_median(values):
    y = torch.tensor(values, dtype=D)
    mse = lambda c: float(((y - c) ** 2).mean())  # noqa: E731
    l1 = lambda c: float((y - c).abs().mean())  # noqa: E731
    mean = float(y.mean())
    for c in (mean - 1e-3, mean + 1e-3):
        assert mse(mean) <= mse(c)
    s = torch.sort(y).values
    n = len(s)
    lo, hi = float(s[(n - 1) // 2]), float(s[n // 2])  # the median interval (a point for odd n)
    best = l1(lo)
    for c in torch.linspace(lo, hi, 5, dtype=D).tolist():
        assert l1(c) == pytest.approx(best, rel=1e-12, abs=1e-9)  # flat on the whole interval
    assert l1(lo - 0.01) > best - 1e-12 and l1(hi + 0.01) > best - 1e-12


def huber_location(y: torch.Tensor, delta: float) -> float:
    """The constant c minimising sum huber_rho(y - c): the root of the decreasing function
    sum clamp(y - c, -delta, delta), found by bisection to machine precision."""
    lo, hi = float(y.min()), float(y.max())
    for _ in range(200):
        mid = 0.5 * (lo + hi)
        if float((y - mid).clamp(-delta, delta).sum()) > 0:
            lo = mid
        else:
            hi = mid
    return 0.5 * (lo + hi)


@given(seeds)
def test_huber_minimiser_goes_from_median_to_mean(seed):
    g = torch.Generator().manual_seed(seed)
    y = torch.cat([torch.randn(16, generator=g, dtype=D), 20 + 5 * torch.rand(3, generator=g, dtype=D)])
    mean, median = float(y.mean()), float(y.median())  # 19 values: a unique median
    path = [huber_location(y, delta) for delta in (1e-4, 0.3, 1.0, 3.0, 30.0)]
    assert path[0] == pytest.approx(median, abs=1e-3)  # tiny delta: an L1 fit
    assert path[-1] == pytest.approx(mean, abs=1e-9)  # delta beyond every residual: least squares
    # In between, the path need not be monotone: with outliers on one side, a moderate delta can
    # clip more core points below than above and pull the estimate slightly under the median.


def test_fair_die_entropy_and_gibbs_inequality():
    fair = torch.full((6,), 1 / 6, dtype=D)
    assert float(lk.entropy(fair)) == pytest.approx(math.log(6))
    loaded = torch.tensor([0.5, 0.1, 0.1, 0.1, 0.1, 0.1], dtype=D)
    assert float(lk.cross_entropy(fair, loaded)) == pytest.approx(float(lk.entropy(fair) + lk.kl_divergence(fair, loaded)))
    assert float(lk.kl_divergence(fair, loaded)) > 0 and float(lk.kl_divergence(fair, fair)) == 0
    assert float(lk.kl_divergence(fair, loaded)) != pytest.approx(float(lk.kl_divergence(loaded, fair)))
    assert float(lk.entropy(torch.tensor([1.0, 0.0]))) == 0.0  # 0 log 0 = 0


def test_pitfall_gaussian_nll_loss_drops_the_constant_unless_full():
    pred, y = regression_pair(1)
    var = torch.full_like(pred, 2.0**2)
    ours = lk.get("mse").nll(pred, y, sigma=2.0)
    torch.testing.assert_close(F.gaussian_nll_loss(pred, y, var, full=True), ours)
    torch.testing.assert_close(F.gaussian_nll_loss(pred, y, var, full=False), ours - 0.5 * math.log(2 * math.pi))


def test_pitfall_kl_div_loss_wants_log_q_and_batchmean():
    g = torch.Generator().manual_seed(0)
    p = torch.softmax(torch.randn(5, 4, generator=g, dtype=D), -1)
    q = torch.softmax(torch.randn(5, 4, generator=g, dtype=D), -1)
    torch.testing.assert_close(F.kl_div(q.log(), p, reduction="batchmean"), lk.kl_divergence(p, q).mean())
    with pytest.warns(UserWarning, match="batchmean"):  # torch itself warns about this pitfall
        plain_mean = F.kl_div(q.log(), p, reduction="mean")
    assert not torch.allclose(plain_mean, lk.kl_divergence(p, q).mean())


def test_registry_describes_every_pair():
    assert set(lk.REGISTRY) == {"mse", "l1", "huber", "student_t", "cross_entropy", "bce"}
    assert lk.get("mse").family == "Gaussian" and lk.get("mse").params == {"sigma": 1.0}
    assert lk.get("mse").multiplier(sigma=0.5) == pytest.approx(2.0)
    assert lk.get("l1").constant(b=0.5) == pytest.approx(0.0)


@pytest.mark.parametrize("name,params,match", [
    ("mse", {"sigma": 0.0}, "sigma must be a finite number > 0"),
    ("l1", {"b": -1.0}, "b must be a finite number > 0"),
    ("huber", {"delta": 0.0}, "delta must be a finite number > 0"),
    ("student_t", {"df": float("nan")}, "df must be a finite number > 0"),
])
def test_non_positive_parameters_are_rejected(name, params, match):
    with pytest.raises(ValueError, match=match):
        lk.get(name).constant(**params)


def test_unknown_names_and_parameters():
    with pytest.raises(KeyError, match="no loss called 'mae'; known losses: mse, l1"):
        lk.get("mae")
    with pytest.raises(TypeError, match=r"mse takes parameters \['sigma'\], not \['b'\]"):
        lk.get("mse").constant(b=1.0)
    with pytest.raises(ValueError, match="delta must be"):
        lk.Huber(0.0, -1.0)
    with pytest.raises(ValueError, match="scale must be"):
        lk.Huber(0.0, 1.0, scale=0.0)


def test_bad_class_labels_get_clear_errors():
    ce = lk.get("cross_entropy")
    logits = torch.randn(4, 3)
    with pytest.raises(TypeError, match=r"int64 class indices of shape \(4,\), got torch.float32.*soft_cross_entropy"):
        ce.loss(logits, torch.zeros(4))
    with pytest.raises(ValueError, match=r"must have shape \(4,\)"):
        ce.loss(logits, torch.zeros(4, 1, dtype=torch.long))
    with pytest.raises(ValueError, match=r"lie in \[0, 3\).*from 0 to 3"):
        ce.loss(logits, torch.tensor([0, 1, 2, 3]))
    with pytest.raises(ValueError, match=r"logits must have shape \(N, C\)"):
        ce.nll(torch.randn(4), torch.zeros(4, dtype=torch.long))


def test_bad_regression_and_binary_targets():
    with pytest.raises(ValueError, match="broadcasting would silently"):
        lk.get("mse").loss(torch.zeros(5, 1), torch.zeros(5))
    with pytest.raises(TypeError, match="binary targets must be floats"):
        lk.get("bce").loss(torch.zeros(3), torch.zeros(3, dtype=torch.long))
    with pytest.raises(ValueError, match=r"lie in \[0, 1\]"):
        lk.get("bce").loss(torch.zeros(3), torch.tensor([0.0, 1.0, 2.0]))


def test_probability_vectors_are_validated():
    with pytest.raises(ValueError, match="probability vectors"):
        lk.entropy(torch.tensor([0.5, 0.6]))
    with pytest.raises(ValueError, match="same \\(N, C\\) shape"):
        lk.soft_cross_entropy(torch.randn(2, 3), torch.full((2, 2), 0.5))
