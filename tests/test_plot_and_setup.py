"""Figure style, history and image plots, and the notebook set-up call."""
import os
import random

import matplotlib
import matplotlib.pyplot as plt
import numpy as np
import pytest
import torch

import d2lcore
from d2lcore import notebook, plot
from d2lcore.train import History

matplotlib.use("Agg")


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


def test_setup_seeds_every_generator_and_fixes_threads(monkeypatch):
    monkeypatch.delenv("D2LCORE_DEVICE", raising=False)
    threads = torch.get_num_threads()
    try:
        d2lcore.setup(seed=3, threads=1)
        first = (random.random(), np.random.rand(), torch.rand(1).item())
        assert torch.get_num_threads() == 1
        device = d2lcore.setup(seed=3, threads=1)
        assert (random.random(), np.random.rand(), torch.rand(1).item()) == first
        assert isinstance(device, torch.device)
        assert matplotlib.rcParams["axes.spines.top"] is False  # the book style is on
    finally:
        torch.set_num_threads(threads)


def test_setup_rejects_zero_threads():
    with pytest.raises(ValueError, match="threads must be a positive integer, got 0"):
        d2lcore.setup(threads=0)


def test_setup_uses_the_cpus_the_process_may_use(monkeypatch):
    threads = torch.get_num_threads()
    monkeypatch.setattr(notebook.os, "sched_getaffinity", lambda pid: {3}, raising=False)
    try:
        assert notebook.usable_cpus() == 1
        d2lcore.setup()
        assert torch.get_num_threads() == 1  # not the machine's count, not a fixed 2
    finally:
        torch.set_num_threads(threads)


def test_setup_threads_from_the_environment(monkeypatch):
    threads = torch.get_num_threads()
    try:
        monkeypatch.setenv("D2LCORE_THREADS", "1")
        d2lcore.setup()
        assert torch.get_num_threads() == 1
        monkeypatch.setenv("D2LCORE_THREADS", "two")
        with pytest.raises(ValueError, match=r"\$D2LCORE_THREADS must be a positive integer, got 'two'"):
            d2lcore.setup()
    finally:
        torch.set_num_threads(threads)


@pytest.mark.parametrize("files, quota", [
    ({"cpu.max": "max 100000\n"}, None),
    ({"cpu.max": "150000 100000\n"}, 1.5),
    ({"cpu/cpu.cfs_quota_us": "-1\n", "cpu/cpu.cfs_period_us": "100000\n"}, None),
    ({"cpu/cpu.cfs_quota_us": "300000\n", "cpu/cpu.cfs_period_us": "100000\n"}, 3.0),
    ({}, None),
])
def test_cgroup_cpu_quota_v1_and_v2(tmp_path, files, quota):
    for name, text in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    assert notebook._cgroup_cpu_quota(tmp_path) == quota


def test_a_cgroup_quota_caps_the_affinity(monkeypatch):
    monkeypatch.setattr(notebook.os, "sched_getaffinity", lambda pid: set(range(8)), raising=False)
    monkeypatch.setattr(notebook, "_cgroup_cpu_quota", lambda: 2.5)
    assert notebook.usable_cpus() == 2
    monkeypatch.setattr(notebook, "_cgroup_cpu_quota", lambda: 0.5)
    assert notebook.usable_cpus() == 1


def test_history_plot_has_loss_and_accuracy_panels():
    h = History(train_loss=[1.0, 0.5, 0.4], val_loss=[1.1, 0.7, 0.6],
                train_accuracy=[0.5, 0.7, 0.8], val_accuracy=[0.4, 0.6, 0.7])
    fig = plot.history(h)
    loss_ax, acc_ax = fig.axes
    assert loss_ax.get_xlabel() == "epoch" and loss_ax.get_ylabel() == "loss"
    assert [line.get_label() for line in loss_ax.lines] == ["train", "validation"]
    assert list(acc_ax.lines[1].get_ydata()) == [0.4, 0.6, 0.7]


def test_history_plot_of_a_step_model_draws_each_named_part():
    h = History(train_loss=[3.0, 2.0], val_loss=[3.2, 2.4],
                train_parts={"reconstruction": [2.5, 1.6], "kl": [0.5, 0.4]},
                val_parts={"reconstruction": [2.7, 2.0], "kl": [0.5, 0.4]})
    loss_ax, parts_ax = plot.history(h).axes
    drawn = {line.get_label(): list(line.get_ydata()) for line in parts_ax.lines}
    assert drawn == {"reconstruction": [2.5, 1.6], "reconstruction (validation)": [2.7, 2.0],
                     "kl": [0.5, 0.4], "kl (validation)": [0.5, 0.4]}
    assert list(loss_ax.lines[0].get_ydata()) == [3.0, 2.0]


def test_history_plot_for_regression_has_one_panel():
    fig = plot.history(History(train_loss=[1.0, 0.5]))
    assert len(fig.axes) == 1 and len(fig.axes[0].lines) == 1


def test_live_plot_redraws_one_figure_instead_of_stacking_lines():
    live = plot.LivePlot()
    h = History()
    for epoch in range(3):
        h.train_loss.append(1.0 / (epoch + 1))
        h.val_loss.append(1.2 / (epoch + 1))
        live.update(h)
    assert len(plt.get_fignums()) == 1
    ax = live.figure.axes[0]
    assert len(ax.lines) == 2 and len(ax.lines[0].get_xdata()) == 3
    live.close()
    assert plt.get_fignums() == []


def test_fit_with_live_plot_leaves_no_open_figure():
    X = torch.randn(16, 2)
    y = X.sum(1, keepdim=True)
    model = torch.nn.Linear(2, 1)
    d2lcore.fit(model, torch.nn.functional.mse_loss, torch.optim.SGD(model.parameters(), lr=0.1),
                d2lcore.data.Batches(X, y, batch_size=8), epochs=2, live_plot=True, progress=False)
    assert plt.get_fignums() == []


def test_images_grid_with_titles():
    imgs = torch.randint(0, 256, (10, 1, 28, 28), dtype=torch.uint8)
    fig = plot.images(imgs, titles=[f"c{i}" for i in range(10)], ncols=4)
    shown = [ax for ax in fig.axes if ax.images]
    assert len(fig.axes) == 12 and len(shown) == 10
    assert shown[9].get_title() == "c9"
    assert np.array_equal(shown[0].images[0].get_array(), imgs[0, 0].float().numpy())


def test_images_accepts_one_precomputed_grid():
    fig = plot.images(torch.rand(30, 60))
    assert len(fig.axes) == 1 and fig.axes[0].images[0].get_array().shape == (30, 60)


def test_images_errors():
    with pytest.raises(ValueError, match=r"expects \(N, H, W\)"):
        plot.images(torch.rand(2, 3, 4, 4))
    with pytest.raises(ValueError, match="got 1 titles for 2 images"):
        plot.images(torch.rand(2, 4, 4), titles=["a"])


def test_share_cpus_gives_each_kernel_its_share_and_keeps_what_the_caller_set(monkeypatch):
    from d2lcore.notebook import THREADS_VAR, share_cpus, usable_cpus

    for var in (THREADS_VAR, "OMP_NUM_THREADS"):
        monkeypatch.delenv(var, raising=False)
    share = str(max(1, usable_cpus() // 2))
    assert share_cpus(2) == share
    assert os.environ[THREADS_VAR] == os.environ["OMP_NUM_THREADS"] == share
    assert share_cpus(10_000) == share  # already set: kept
    monkeypatch.setenv(THREADS_VAR, "3")
    assert share_cpus(1) == "3"
