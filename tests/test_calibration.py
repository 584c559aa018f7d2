"""d2lcore.calibration: NLL, Brier score, ECE and reliability bins (used by section 5.4)."""
import math

import pytest
import torch
import torch.nn.functional as F

from d2lcore import calibration
from d2lcore.rng import generator


def _random_probs(n, k, seed, scale=3.0):
    g = generator(seed)
    return (scale * torch.randn(n, k, generator=g, dtype=torch.float64)).softmax(dim=1)


def test_nll_and_brier_match_their_definitions():
    probs = _random_probs(500, 4, seed=1)
    y = torch.multinomial(probs, 1, generator=generator(2)).squeeze(1)
    expected_nll = F.nll_loss(probs.log(), y)
    torch.testing.assert_close(calibration.nll(probs, y), expected_nll)
    torch.testing.assert_close(calibration.nll(probs, y),
                               -torch.distributions.Categorical(probs=probs).log_prob(y).mean())
    onehot = F.one_hot(y, 4).double()
    torch.testing.assert_close(calibration.brier(probs, y), ((probs - onehot) ** 2).sum(1).mean())
    # a one-hot prediction that is right scores 0 on both; one that is wrong scores 2 (Brier)
    sure = F.one_hot(torch.tensor([0, 2]), 3).double()
    assert calibration.brier(sure, torch.tensor([0, 2])) == 0
    assert calibration.brier(sure, torch.tensor([1, 0])) == 2
    assert calibration.nll(sure, torch.tensor([0, 2])) == 0
    assert math.isfinite(calibration.nll(sure, torch.tensor([1, 0])).item())  # clamped, not inf


def test_reliability_bins_count_every_prediction_once():
    probs = _random_probs(2000, 10, seed=3)
    y = torch.randint(0, 10, (2000,), generator=generator(4))
    rel = calibration.reliability(probs, y, bins=15)
    assert rel.count.sum() == 2000 and rel.edges[0] == 0 and rel.edges[-1] == 1
    conf = probs.max(1).values
    filled = rel.count > 0
    lo, hi = rel.edges[:-1][filled], rel.edges[1:][filled]
    assert torch.all(rel.confidence[filled] >= lo - 1e-12) and torch.all(rel.confidence[filled] <= hi + 1e-12)
    # the count-weighted bin confidences and accuracies are the overall means
    torch.testing.assert_close((rel.count * rel.confidence).sum() / 2000, conf.mean())
    accuracy = (probs.argmax(1) == y).double().mean()
    torch.testing.assert_close((rel.count * rel.accuracy).sum() / 2000, accuracy)
    torch.testing.assert_close(calibration.ece(probs, y, bins=15), rel.ece)
    # one bin: ECE is |accuracy - mean confidence|
    torch.testing.assert_close(calibration.ece(probs, y, bins=1), (accuracy - conf.mean()).abs())


def test_a_perfectly_calibrated_predictor_has_ece_near_zero():
    # Labels drawn from the predicted probabilities themselves: calibrated by construction.
    # With N = 200,000 and 15 bins, each bin's |accuracy - confidence| is a sampling error of
    # about sqrt(c (1 - c) / n_b) <= 0.5 / sqrt(n_b); the count-weighted sum is at most
    # sum_b sqrt(n_b) / (2N) <= sqrt(15 / N) / 2 = 0.0043 in expectation. 0.015 is over three
    # times that bound (false alarm far below 1e-6 by Hoeffding in each bin).
    probs = _random_probs(200_000, 10, seed=5, scale=2.0)
    y = torch.multinomial(probs, 1, generator=generator(6)).squeeze(1)
    assert calibration.ece(probs, y).item() < 0.015


def test_a_known_miscalibration_is_detected():
    # Always 90 % sure of class 0 (the rest spread evenly), but class 0 is right 70 % of the
    # time: ECE = |0.7 - 0.9| = 0.2. 100,000 draws: accuracy s.e. 0.0014; 0.01 is 7 s.e.
    n = 100_000
    probs = torch.full((n, 5), 0.025, dtype=torch.float64)
    probs[:, 0] = 0.9
    g = generator(7)
    right = torch.rand(n, generator=g, dtype=torch.float64) < 0.7
    y = torch.where(right, 0, torch.randint(1, 5, (n,), generator=g))
    assert abs(calibration.ece(probs, y).item() - 0.2) < 0.01
    # over-confidence: tempering the calibrated predictor of the previous test by T = 0.5
    # (sharper) raises its ECE well above the calibrated one
    base = _random_probs(50_000, 10, seed=8, scale=2.0)
    labels = torch.multinomial(base, 1, generator=generator(9)).squeeze(1)
    sharp = (base.log() / 0.5).softmax(1)
    assert calibration.ece(sharp, labels) > 0.05 > 0.015 > calibration.ece(base, labels)
    assert calibration.nll(sharp, labels) > calibration.nll(base, labels)


def test_summary_and_bad_inputs():
    probs = torch.tensor([[0.9, 0.1], [0.6, 0.4], [0.2, 0.8]])
    y = torch.tensor([0, 1, 1])
    s = calibration.summary(probs, y, bins=10)
    assert s["accuracy"] == pytest.approx(2 / 3)
    assert s["brier"] == pytest.approx(0.82 / 3, rel=1e-6)
    assert s["nll"] == pytest.approx(-(math.log(0.9) + math.log(0.4) + math.log(0.8)) / 3, rel=1e-6)
    with pytest.raises(ValueError, match="probs must have shape"):
        calibration.nll(probs[0], y)
    with pytest.raises(ValueError, match="y must have shape"):
        calibration.brier(probs, y[:2])
    with pytest.raises(TypeError, match="integer class labels"):
        calibration.ece(probs, y.float())
    with pytest.raises(TypeError, match="softmax"):
        calibration.nll(torch.ones(3, 2, dtype=torch.int64), y)
    with pytest.raises(ValueError, match="bins must be a positive integer"):
        calibration.ece(probs, y, bins=0)
