"""The training loop: metrics weighted by examples, failure modes, checkpoints, no host syncs."""
import math
import pickle

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from d2lcore.data.batches import Batches
from d2lcore.train import History, NonFiniteLossError, evaluate, fit, load_checkpoint, save_checkpoint, step


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


def test_no_value_is_read_back_from_the_device_inside_the_batch_loop(monkeypatch, as_step=False):
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

    @step
    def two_parts(model, batch):
        X, y = batch
        return {"nll": F.cross_entropy(model(X), y), "l2": 1e-3 * (model.weight**2).sum()}

    history = fit(model, two_parts if as_step else F.cross_entropy, torch.optim.SGD(model.parameters(), lr=0.1),
                  Watched(Batches(X, y, batch_size=16)), val=Watched(Batches(X, y, batch_size=32)),
                  epochs=2, clip_grad_norm=10.0, progress=False)
    assert history.epochs == 2 and len(history.val_accuracy if not as_step else history.val_parts["l2"]) == 2


def test_checkpoint_round_trip_with_history(tmp_path):
    X, y = regression_data()
    model = nn.Linear(3, 1)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    path = tmp_path / "run.pt"
    train = Batches(X, y, batch_size=16, shuffle=True)
    history = fit(model, F.mse_loss, optimizer, train, epochs=3, checkpoint=path, progress=False)
    assert [p.name for p in tmp_path.iterdir()] == ["run.pt"]  # no temporary file left behind
    clone = nn.Linear(3, 1)
    clone_opt = torch.optim.SGD(clone.parameters(), lr=0.1, momentum=0.9)
    clone_train = Batches(X, y, batch_size=16, shuffle=True)
    restored = load_checkpoint(path, clone, clone_opt, data=clone_train)
    assert torch.equal(clone_train.generator.get_state(), train.generator.get_state())
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


# --- step functions: models whose batches are not (X, y) ------------------------------------

class TinyVAE(nn.Module):
    """A linear Gaussian VAE small enough to train in a test."""

    def __init__(self, d=4, z=2):
        super().__init__()
        self.encoder, self.decoder = nn.Linear(d, 2 * z), nn.Linear(z, d)

    def parts(self, x):
        mean, log_var = self.encoder(x).chunk(2, dim=1)                      # (B, z) each
        z = mean + torch.randn_like(mean) * (0.5 * log_var).exp()
        reconstruction = 0.5 * ((self.decoder(z) - x) ** 2).sum(1)            # (B,)
        kl = 0.5 * (mean**2 + log_var.exp() - 1 - log_var).sum(1)             # (B,)
        return reconstruction.mean(), kl.mean()


@step
def vae_step(model, batch):
    (x,) = batch  # Batches(X) yields 1-tuples: images without targets
    reconstruction, kl = model.parts(x)
    return {"reconstruction": reconstruction, "kl": kl}


def test_a_step_function_trains_a_vae_and_records_each_named_part():
    torch.manual_seed(0)
    X, _ = regression_data(n=64)
    X = torch.cat([X, X[:, :1]], dim=1)  # (64, 4) with a redundant column the VAE can learn
    model = TinyVAE()
    history = fit(model, vae_step, torch.optim.Adam(model.parameters(), lr=0.05),
                  Batches(X, batch_size=16, shuffle=True), val=Batches(X, batch_size=64), epochs=6, progress=False)
    assert set(history.train_parts) == set(history.val_parts) == {"reconstruction", "kl"}
    for split in ("train", "val"):
        parts, total = getattr(history, f"{split}_parts"), getattr(history, f"{split}_loss")
        assert all(len(v) == 6 for v in parts.values()) and len(total) == 6
        for e in range(6):  # the loss is the sum of its parts, epoch by epoch
            assert total[e] == pytest.approx(parts["reconstruction"][e] + parts["kl"][e], rel=1e-12)
    assert history.train_loss[-1] < 0.75 * history.train_loss[0]  # 2.72 -> 1.80 nats when written
    assert history.train_accuracy == [] and "train_kl=" in repr(history)
    assert set(evaluate(model, vae_step, Batches(X, batch_size=64))) == {"loss", "reconstruction", "kl"}


def test_a_step_function_trains_a_next_token_model_on_b_t_v_logits():
    torch.manual_seed(0)
    vocab, T = 5, 6
    text = torch.arange(600) % vocab                      # a deterministic cycle: learnable exactly
    windows = text.unfold(0, T + 1, 1)[:200]              # (N, T + 1)
    model = nn.Sequential(nn.Embedding(vocab, 16), nn.Linear(16, vocab))

    @step
    def next_token(model, batch):
        context, target = batch                           # (B, T) each
        logits = model(context)                           # (B, T, V)
        return F.cross_entropy(logits.flatten(0, 1), target.flatten())

    data = Batches(windows[:, :-1], windows[:, 1:], batch_size=32, shuffle=True)
    before = evaluate(model, next_token, data)["loss"]
    history = fit(model, next_token, torch.optim.Adam(model.parameters(), lr=0.1), data, epochs=5, progress=False)
    assert before > 1.0 and history.train_loss[-1] < 0.05  # nats per token; log 5 = 1.61 is chance
    assert history.train_parts == {} and "accuracy" not in evaluate(model, next_token, data)


def test_a_step_function_that_draws_its_own_noise_trains_like_a_diffusion_model():
    torch.manual_seed(0)
    X, _ = regression_data(n=64)
    model = nn.Linear(4, 3)  # predicts the noise from (noisy x, t)

    @step
    def denoise(model, batch):
        (x,) = batch
        t = torch.rand(x.shape[0], 1, device=x.device)           # (B, 1) its own time step
        noise = torch.randn_like(x)                               # (B, 3) its own noise
        noisy = (1 - t).sqrt() * x + t.sqrt() * noise
        return F.mse_loss(model(torch.cat([noisy, t], dim=1)), noise)

    history = fit(model, denoise, torch.optim.Adam(model.parameters(), lr=0.05), Batches(X, batch_size=16),
                  val=Batches(X, batch_size=64), epochs=4, progress=False)
    assert history.epochs == 4 and len(history.val_loss) == 4 and history.train_loss[-1] < history.train_loss[0]


@pytest.mark.parametrize("result, message", [
    (lambda x: (x**2).sum(1), r"returned a tensor of shape \(8,\).*0-d tensor"),
    (lambda x: 3.0, "returned a float for 'loss'"),
    (lambda x: {}, "returned an empty dict"),
    (lambda x: {"kl": (x**2).mean(), 1: x.mean()}, "with the key 1"),
    (lambda x: {"kl": (x.sum() > 0)}, "dtype torch.bool for 'kl'"),
])
def test_a_step_that_returns_something_else_is_a_clear_error(result, message):
    model = nn.Linear(3, 1)
    bad = step(lambda m, batch: result(m(batch[0])))
    with pytest.raises((TypeError, ValueError), match=message):
        fit(model, bad, torch.optim.SGD(model.parameters(), lr=0.1), Batches(torch.randn(8, 3), batch_size=8),
            progress=False)


def test_nan_in_one_named_part_names_the_epoch_the_batch_and_the_part():
    X, y = regression_data(n=40)
    model = nn.Linear(3, 1)

    @step
    def two_parts(model, batch):
        X, y = batch
        return {"fit": F.mse_loss(model(X), y), "penalty": 0.01 * (model.weight**2).sum() + 0 * X.sum()}

    data = Epochs(X, y, batch_size=8, at=(2, 3), action="nan")
    with pytest.raises(NonFiniteLossError, match=r"the part 'fit' of the training loss became nan at epoch 2, "
                                                 r"batch 3") as info:
        fit(model, two_parts, torch.optim.SGD(model.parameters(), lr=0.01), data, epochs=3, progress=False)
    assert info.value.part == "fit" and info.value.history.epochs == 1
    assert list(info.value.history.train_parts) == ["fit", "penalty"]


# --- data sources, interruption, observers --------------------------------------------------

def test_a_generator_without_len_trains_and_the_progress_bar_counts_without_a_total(capsys):
    X, y = regression_data(n=32)
    model = nn.Linear(3, 1)
    batches = ((X[i:i + 8], y[i:i + 8]) for i in range(0, 32, 8))
    history = fit(model, F.mse_loss, torch.optim.SGD(model.parameters(), lr=0.1), batches, epochs=1)
    assert history.epochs == 1
    err = capsys.readouterr().err
    assert "4batch" in err.replace(" ", "") and "4/" not in err  # a count, no total

    class Passes:  # iterable again and again, but without __len__
        def __iter__(self):
            return ((X[i:i + 8], y[i:i + 8]) for i in range(0, 32, 8))

    history = fit(model, F.mse_loss, torch.optim.SGD(model.parameters(), lr=0.1), Passes(), epochs=3)
    assert history.epochs == 3 and "12batch" in capsys.readouterr().err.replace(" ", "")


def test_a_used_up_generator_for_several_epochs_is_refused_before_training():
    X, y = regression_data(n=32)
    model = nn.Linear(3, 1)
    before = model.weight.detach().clone()
    with pytest.raises(TypeError, match=r"train is a generator, which is used up after one pass, but epochs=3"):
        fit(model, F.mse_loss, torch.optim.SGD(model.parameters(), lr=0.1), ((X, y) for _ in range(2)), epochs=3)
    assert torch.equal(model.weight, before)


class InterruptDuringValidation:
    def __init__(self, X, y, at_epoch):
        self.X, self.y, self.at_epoch, self.passes = X, y, at_epoch, 0

    def __iter__(self):
        self.passes += 1
        yield self.X[:8], self.y[:8]
        if self.passes == self.at_epoch:
            raise KeyboardInterrupt
        yield self.X[8:], self.y[8:]


def test_ctrl_c_during_validation_keeps_a_consistent_history(capsys, tmp_path):
    X, y = regression_data(n=40)
    model = nn.Linear(3, 1)
    history = fit(model, F.mse_loss, torch.optim.SGD(model.parameters(), lr=0.01), Batches(X, y, batch_size=8),
                  val=InterruptDuringValidation(X, y, at_epoch=3), epochs=5, progress=False,
                  checkpoint=tmp_path / "run.pt")
    assert history.interrupted and history.epochs == 2
    assert len(history.train_loss) == len(history.val_loss) == len(history.seconds) == 2
    out = capsys.readouterr().out
    assert "interrupted during epoch 3 (validation); returning the 2 completed epoch(s)" in out
    saved = load_checkpoint(tmp_path / "run.pt", nn.Linear(3, 1))
    assert saved.epochs == 2 and saved.val_loss == history.val_loss  # the checkpoint agrees


def test_observers_see_every_batch_and_every_epoch_and_are_closed():
    X, y = regression_data(n=40)
    model = nn.Linear(3, 1)

    class Watcher:
        def __init__(self):
            self.batches, self.epochs, self.closed = 0, [], False

        def on_batch(self):
            self.batches += 1

        def on_epoch(self, history):
            self.epochs.append(history.epochs)

        def close(self):
            self.closed = True

    class OnlyEpochs:
        def __init__(self):
            self.seen = []

        def on_epoch(self, history):
            self.seen.append(history.train_loss[-1])

    watcher, only = Watcher(), OnlyEpochs()
    history = fit(model, F.mse_loss, torch.optim.SGD(model.parameters(), lr=0.01), Batches(X, y, batch_size=8),
                  epochs=3, progress=False, live_plot=True, observers=[watcher, only])
    assert (watcher.batches, watcher.epochs, watcher.closed) == (15, [1, 2, 3], True)
    assert only.seen == history.train_loss


def test_the_step_path_reads_nothing_back_inside_the_batch_loop(monkeypatch):
    test_no_value_is_read_back_from_the_device_inside_the_batch_loop(monkeypatch, as_step=True)


# --- resuming from a checkpoint -------------------------------------------------------------------

def _resumable_run():
    """A run whose every epoch depends on more than the weights: a shuffled loader, dropout
    (the global generator), momentum and a cosine schedule."""
    g = torch.Generator().manual_seed(0)
    X, y = torch.randn(256, 8, generator=g), torch.randint(0, 3, (256,), generator=g)

    def start():
        torch.manual_seed(0)
        model = nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Dropout(0.3), nn.Linear(16, 3))
        optimizer = torch.optim.SGD(model.parameters(), lr=0.5, momentum=0.9)
        return model, optimizer, torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=4)

    return start, lambda: Batches(X, y, batch_size=32, shuffle=True, seed=1)


def test_a_run_resumed_from_its_checkpoint_computes_what_the_uninterrupted_run_does(tmp_path):
    start, data = _resumable_run()
    model, optimizer, scheduler = start()
    straight = fit(model, F.cross_entropy, optimizer, data(), epochs=4, scheduler=scheduler, progress=False)

    first, first_opt, first_sched = start()
    fit(first, F.cross_entropy, first_opt, data(), epochs=2, scheduler=first_sched, progress=False,
        checkpoint=tmp_path / "run.pt")
    torch.manual_seed(123)  # a new session: its random state is anything
    resumed, resumed_opt, resumed_sched = start()
    train = data()  # a new loader, as a new session makes
    so_far = load_checkpoint(tmp_path / "run.pt", resumed, resumed_opt, data=train, scheduler=resumed_sched)
    rest = fit(resumed, F.cross_entropy, resumed_opt, train, epochs=2, scheduler=resumed_sched, progress=False)

    assert so_far.train_loss + rest.train_loss == straight.train_loss  # exactly, epoch by epoch
    for a, b in zip(resumed.parameters(), model.parameters()):
        assert torch.equal(a, b)
    assert resumed_sched.last_epoch == scheduler.last_epoch == 4


def test_resuming_without_the_data_warns_and_differs(tmp_path):
    start, data = _resumable_run()
    model, optimizer, scheduler = start()
    fit(model, F.cross_entropy, optimizer, data(), epochs=2, scheduler=scheduler, progress=False,
        checkpoint=tmp_path / "run.pt")
    straight = fit(model, F.cross_entropy, optimizer, data(), epochs=1, progress=False)  # epoch 3, fresh order
    resumed, resumed_opt, _ = start()
    with pytest.warns(UserWarning, match="pass data=<the training batches>"):
        load_checkpoint(tmp_path / "run.pt", resumed, resumed_opt)
    again = fit(resumed, F.cross_entropy, resumed_opt, data(), epochs=1, progress=False)
    # The same first-epoch order both times here: with data= the resumed run would draw epoch 3's.
    assert again.train_loss == straight.train_loss


def test_resume_state_that_was_not_saved_or_cannot_be_is_a_clear_error(tmp_path):
    model = nn.Linear(3, 1)
    save_checkpoint(tmp_path / "m.pt", model)
    with pytest.raises(KeyError, match="holds no data state"):
        load_checkpoint(tmp_path / "m.pt", nn.Linear(3, 1), data=Batches(torch.zeros(4, 3), batch_size=2))
    with pytest.raises(TypeError, match="no torch.Generator"):
        save_checkpoint(tmp_path / "m.pt", model, data=[(torch.zeros(2, 3), torch.zeros(2, 1))])
