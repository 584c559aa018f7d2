"""The training loop: metrics weighted by examples, failure modes, checkpoints, no host syncs."""
import math
import pickle

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from d2lcore.data.batches import Batches
from d2lcore.train import History, NonFiniteLossError, evaluate, fit, load_checkpoint, save_checkpoint


def regression_data(n=64, seed=0):
    g = torch.Generator().manual_seed(seed)
    X = torch.randn(n, 3, generator=g)
    y = X @ torch.tensor([[1.0], [-2.0], [0.5]]) + 0.3
    return X, y


def classification_data(n=90, classes=3, seed=0):
    g = torch.Generator().manual_seed(seed)
    y = torch.randint(0, classes, (n,), generator=g)
    X = torch.randn(n, 4, generator=g) + F.one_hot(y, 4).float() * 3
    return X, y


class Epochs:
    """An iterable of batches that can misbehave at a chosen (epoch, batch), both from 1."""

    def __init__(self, X, y, batch_size, at=None, action=None):
        self.X, self.y, self.batch_size, self.at, self.action = X, y, batch_size, at, action
        self.epoch = 0

    def __len__(self):
        return math.ceil(len(self.X) / self.batch_size)

    def __iter__(self):
        self.epoch += 1
        for b, start in enumerate(range(0, len(self.X), self.batch_size), start=1):
            X, y = self.X[start:start + self.batch_size], self.y[start:start + self.batch_size]
            if (self.epoch, b) == self.at:
                if self.action == "nan":
                    X = X.clone()
                    X[0, 0] = float("nan")
                elif self.action == "interrupt":
                    raise KeyboardInterrupt
            yield X, y


def test_fit_learns_a_linear_function_and_records_every_epoch():
    torch.manual_seed(0)
    X, y = regression_data()
    model = nn.Linear(3, 1)
    history = fit(model, F.mse_loss, torch.optim.SGD(model.parameters(), lr=0.1),
                  Batches(X, y, batch_size=8, shuffle=True), val=Batches(X, y, batch_size=16),
                  epochs=5, progress=False)
    assert history.epochs == 5 and len(history.val_loss) == 5 and len(history.seconds) == 5
    assert history.train_accuracy == [] and history.val_accuracy == []  # regression: no accuracy
    assert history.val_loss[-1] < 0.01 * history.train_loss[0]
    assert history.val_loss == sorted(history.val_loss, reverse=True)
    assert not history.interrupted


def test_a_scheduler_is_stepped_once_per_epoch_after_that_epochs_updates():
    X, y = regression_data()
    model = nn.Linear(3, 1)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    seen = []

    class Recording(torch.optim.lr_scheduler.StepLR):
        def step(self, *args):
            seen.append(self.optimizer.param_groups[0]["lr"])  # the rate the finished epoch used
            super().step(*args)

    scheduler = Recording(optimizer, step_size=1, gamma=0.5)
    seen.clear()  # the constructor takes a first step of its own
    fit(model, F.mse_loss, optimizer, Batches(X, y, batch_size=8), epochs=3, progress=False, scheduler=scheduler)
    assert seen == pytest.approx([0.1, 0.05, 0.025])
    assert optimizer.param_groups[0]["lr"] == pytest.approx(0.0125)


def test_evaluate_weights_batches_by_their_size_not_a_mean_of_batch_means():
    X, y = regression_data(n=10)
    model = nn.Linear(3, 1)
    with torch.no_grad():
        exact = F.mse_loss(model(X), y).item()
    # Batches of 4, 4 and 2: a mean of the three batch means would differ from the exact mean.
    with torch.no_grad():
        means = [F.mse_loss(model(X[s:s + 4]), y[s:s + 4]).item() for s in (0, 4, 8)]
    assert abs(sum(means) / 3 - exact) > 1e-3
    assert evaluate(model, F.mse_loss, Batches(X, y, batch_size=4))["loss"] == pytest.approx(exact, rel=1e-6)


def test_accuracy_is_the_exact_fraction_of_correct_predictions():
    X, y = classification_data(n=90)
    model = nn.Linear(4, 3)
    with torch.no_grad():
        logits = model(X)
    expected = (logits.argmax(1) == y).sum().item() / len(y)
    result = evaluate(model, F.cross_entropy, Batches(X, y, batch_size=32))
    assert result["accuracy"] == pytest.approx(expected, abs=1e-12)
    assert result["loss"] == pytest.approx(F.cross_entropy(logits, y).item(), rel=1e-6)


def test_evaluate_restores_training_mode():
    X, y = classification_data()
    model = nn.Sequential(nn.Dropout(0.5), nn.Linear(4, 3))
    model.train()
    evaluate(model, F.cross_entropy, Batches(X, y, batch_size=32))
    assert model.training
    model.eval()
    evaluate(model, F.cross_entropy, Batches(X, y, batch_size=32))
    assert not model.training


def test_a_classifier_reaches_high_accuracy_and_records_it():
    torch.manual_seed(0)
    X, y = classification_data(n=300)
    model = nn.Linear(4, 3)
    history = fit(model, F.cross_entropy, torch.optim.SGD(model.parameters(), lr=0.5),
                  Batches(X, y, batch_size=30, shuffle=True), val=Batches(X, y, batch_size=100),
                  epochs=5, progress=False)
    assert len(history.train_accuracy) == 5 and len(history.val_accuracy) == 5
    assert history.val_accuracy[-1] > 0.9
    assert all(0.0 <= a <= 1.0 for a in history.train_accuracy)


def test_nan_loss_stops_training_naming_epoch_and_batch_and_keeps_history():
    X, y = regression_data(n=40)
    model = nn.Linear(3, 1)
    data = Epochs(X, y, batch_size=8, at=(2, 3), action="nan")
    with pytest.raises(NonFiniteLossError, match=r"nan at epoch 2, batch 3") as info:
        fit(model, F.mse_loss, torch.optim.SGD(model.parameters(), lr=0.01), data, epochs=4, progress=False)
    err = info.value
    assert (err.epoch, err.batch) == (2, 3) and math.isnan(err.value)
    assert err.history.epochs == 1 and math.isfinite(err.history.train_loss[0])


def test_infinite_loss_is_reported_too():
    X, y = regression_data(n=16)
    model = nn.Linear(3, 1)
    with torch.no_grad():
        model.weight.fill_(1e30)
    with pytest.raises(NonFiniteLossError, match="inf at epoch 1, batch 1"):
        fit(model, F.mse_loss, torch.optim.SGD(model.parameters(), lr=0.01),
            Batches(X, y, batch_size=8), epochs=1, progress=False)


def test_keyboard_interrupt_returns_the_completed_epochs(capsys):
    X, y = regression_data(n=40)
    model = nn.Linear(3, 1)
    data = Epochs(X, y, batch_size=8, at=(3, 2), action="interrupt")
    history = fit(model, F.mse_loss, torch.optim.SGD(model.parameters(), lr=0.01), data, epochs=5, progress=False)
    assert history.interrupted and history.epochs == 2
    assert "interrupted during epoch 3" in capsys.readouterr().out


def test_float_class_labels_are_rejected_with_a_hint():
    X, y = classification_data()
    model = nn.Linear(4, 3)
    with pytest.raises(TypeError, match=r"class labels must be integer indices.*y\.long\(\)"):
        fit(model, F.cross_entropy, torch.optim.SGD(model.parameters(), lr=0.1),
            Batches(X, y.float(), batch_size=32), epochs=1, progress=False)


def test_mismatched_batch_sizes_are_rejected():
    X, y = classification_data()
    model = nn.Sequential(nn.Flatten(0), nn.Unflatten(0, (-1, 2)))  # reshapes away the batch size
    with pytest.raises(ValueError, match="predictions for a batch of"):
        evaluate(model, F.mse_loss, Batches(X, y.float(), batch_size=32))


def test_model_and_data_on_different_devices_is_a_clear_error():
    X, y = regression_data()
    model = nn.Linear(3, 1, device="meta")
    with pytest.raises(RuntimeError, match=r"model is on meta but the batches are on cpu"):
        fit(model, F.mse_loss, torch.optim.SGD(model.parameters(), lr=0.1), Batches(X, y, batch_size=8),
            epochs=1, progress=False)


@pytest.mark.parametrize("epochs", [0, -1, 1.5])
def test_bad_epochs(epochs):
    model = nn.Linear(3, 1)
    with pytest.raises(ValueError, match="epochs must be a positive integer"):
        fit(model, F.mse_loss, torch.optim.SGD(model.parameters(), lr=0.1), [], epochs=epochs)


def test_empty_training_data_is_an_error():
    model = nn.Linear(3, 1)
    with pytest.raises(ValueError, match="training data produced no batches"):
        fit(model, F.mse_loss, torch.optim.SGD(model.parameters(), lr=0.1), [], epochs=1, progress=False)
    with pytest.raises(ValueError, match="got no batches"):
        evaluate(model, F.mse_loss, [])


def test_gradient_clipping_bounds_each_step():
    X, y = regression_data(n=8)
    model = nn.Linear(3, 1)
    before = torch.cat([p.detach().flatten().clone() for p in model.parameters()])
    fit(model, lambda out, t: 1e6 * F.mse_loss(out, t), torch.optim.SGD(model.parameters(), lr=1.0),
        Batches(X, y, batch_size=8), epochs=1, clip_grad_norm=1e-3, progress=False)
    after = torch.cat([p.detach().flatten() for p in model.parameters()])
    assert (after - before).norm() <= 1e-3 * (1 + 1e-5)


def test_bf16_request_off_cuda_warns_and_trains_in_float32():
    X, y = regression_data(n=16)
    model = nn.Linear(3, 1)
    with pytest.warns(UserWarning, match="only used on CUDA"):
        history = fit(model, F.mse_loss, torch.optim.SGD(model.parameters(), lr=0.1),
                      Batches(X, y, batch_size=8), epochs=1, bf16=True, progress=False)
    assert model.weight.dtype == torch.float32 and history.epochs == 1


def test_progress_bar_reports_the_epoch_metrics(capsys):
    X, y = regression_data(n=16)
    model = nn.Linear(3, 1)
    fit(model, F.mse_loss, torch.optim.SGD(model.parameters(), lr=0.1), Batches(X, y, batch_size=8),
        epochs=2, progress=True)
    err = capsys.readouterr().err
    assert "4/4" in err and "train loss" in err


def test_no_value_is_read_back_from_the_device_inside_the_batch_loop(monkeypatch):
    """Principle 4: between fetching a batch and fetching the next, nothing syncs with the host."""
    X, y = classification_data(n=96)
    inside = {"loop": False}

    class Watched:
        def __init__(self, batches):
            self.batches = batches

        def __len__(self):
            return len(self.batches)

        def __iter__(self):
            for batch in self.batches:
                inside["loop"] = True
                yield batch
                inside["loop"] = False
            inside["loop"] = False

    def forbid(name):
        original = getattr(torch.Tensor, name)

        def guarded(self, *args, **kwargs):
            if inside["loop"]:
                raise AssertionError(f"Tensor.{name} called inside the batch loop")
            return original(self, *args, **kwargs)

        monkeypatch.setattr(torch.Tensor, name, guarded)

    for name in ("item", "tolist", "cpu", "numpy", "__float__", "__int__", "__bool__"):
        forbid(name)
    model = nn.Linear(4, 3)
    history = fit(model, F.cross_entropy, torch.optim.SGD(model.parameters(), lr=0.1),
                  Watched(Batches(X, y, batch_size=16)), val=Watched(Batches(X, y, batch_size=32)),
                  epochs=2, clip_grad_norm=10.0, progress=False)
    assert history.epochs == 2 and len(history.val_accuracy) == 2


def test_checkpoint_round_trip_with_history(tmp_path):
    X, y = regression_data()
    model = nn.Linear(3, 1)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    path = tmp_path / "run.pt"
    history = fit(model, F.mse_loss, optimizer, Batches(X, y, batch_size=16), epochs=3,
                  checkpoint=path, progress=False)
    assert path.exists() and not (tmp_path / "run.pt.tmp").exists()
    clone = nn.Linear(3, 1)
    clone_opt = torch.optim.SGD(clone.parameters(), lr=0.1, momentum=0.9)
    restored = load_checkpoint(path, clone, clone_opt)
    assert restored == history
    assert torch.equal(clone.weight, model.weight) and torch.equal(clone.bias, model.bias)
    assert clone_opt.state_dict()["state"][0]["momentum_buffer"].equal(
        optimizer.state_dict()["state"][0]["momentum_buffer"])


def test_checkpoint_without_optimizer_state(tmp_path):
    model = nn.Linear(3, 1)
    save_checkpoint(tmp_path / "m.pt", model)
    assert load_checkpoint(tmp_path / "m.pt", nn.Linear(3, 1)) is None
    with pytest.raises(KeyError, match="holds no optimizer state"):
        load_checkpoint(tmp_path / "m.pt", nn.Linear(3, 1), torch.optim.SGD(model.parameters(), lr=0.1))


class Payload:
    def __reduce__(self):
        return (print, ("code ran while loading",))


def test_checkpoints_load_with_weights_only(tmp_path):
    model = nn.Linear(3, 1)
    torch.save({"model": model.state_dict(), "extra": Payload()}, tmp_path / "evil.pt")
    with pytest.raises(pickle.UnpicklingError, match="Weights only load failed"):
        load_checkpoint(tmp_path / "evil.pt", nn.Linear(3, 1))


def test_history_repr_and_dict_round_trip():
    h = History(train_loss=[1.0, 0.5], val_loss=[1.1, 0.6], seconds=[0.1, 0.1])
    assert History.from_dict(h.as_dict()) == h
    assert "2 epochs" in repr(h) and "val_loss=0.6000" in repr(h)
    assert repr(History()) == "History(no completed epochs)"
