"""Device choice and moving nested batches."""
from collections import OrderedDict, namedtuple

import pytest
import torch

from d2lcore.device import ENV_VAR, choose_device, to_device


def test_default_is_the_best_available_device(monkeypatch):
    monkeypatch.delenv(ENV_VAR, raising=False)
    expected = "cuda" if torch.cuda.is_available() else "mps" if torch.backends.mps.is_available() else "cpu"
    assert choose_device().type == expected


def test_cuda_then_mps_then_cpu(monkeypatch):
    monkeypatch.delenv(ENV_VAR, raising=False)
    monkeypatch.setattr("d2lcore.device._available", lambda kind: kind in {"mps", "cpu"})
    assert choose_device() == torch.device("mps")
    monkeypatch.setattr("d2lcore.device._available", lambda kind: True)
    assert choose_device() == torch.device("cuda")
    monkeypatch.setattr("d2lcore.device._available", lambda kind: kind == "cpu")
    assert choose_device() == torch.device("cpu")


def test_environment_override(monkeypatch):
    monkeypatch.setenv(ENV_VAR, "cpu")
    monkeypatch.setattr("d2lcore.device._available", lambda kind: True)  # even if CUDA existed
    assert choose_device() == torch.device("cpu")


def test_explicit_argument_beats_environment(monkeypatch):
    monkeypatch.setenv(ENV_VAR, "nonsense")
    assert choose_device("cpu") == torch.device("cpu")


@pytest.mark.parametrize("name", ["gpu", "cuda:x", "tpu0", ""])
def test_unknown_device_names(monkeypatch, name):
    monkeypatch.delenv(ENV_VAR, raising=False)
    if name == "":
        assert choose_device(None).type in {"cpu", "cuda", "mps"}
        monkeypatch.setenv(ENV_VAR, "")  # an empty variable means unset
        assert choose_device().type in {"cpu", "cuda", "mps"}
        return
    with pytest.raises(ValueError, match=rf"unknown device '{name}' \(from the argument\).*'cpu', 'cuda'"):
        choose_device(name)


def test_unknown_device_from_environment_names_the_variable(monkeypatch):
    monkeypatch.setenv(ENV_VAR, "gpu")
    with pytest.raises(ValueError, match=r"\$D2LCORE_DEVICE"):
        choose_device()


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA, so asking for it is not an error")
def test_unavailable_device_is_an_error_not_a_fallback():
    with pytest.raises(RuntimeError, match="'cuda' \\(from the argument\\) is not available"):
        choose_device("cuda")


def test_missing_cuda_index(monkeypatch):
    monkeypatch.setattr("d2lcore.device._available", lambda kind: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    with pytest.raises(RuntimeError, match="has 1 CUDA device"):
        choose_device("cuda:3")


def test_to_device_moves_nested_batches_and_keeps_their_types():
    Pair = namedtuple("Pair", "x y")
    batch = {"a": torch.ones(2), "b": [torch.zeros(1), (torch.ones(3), 7)], "c": Pair(torch.ones(1), "label"),
             "d": OrderedDict(e=torch.ones(1))}
    moved = to_device(batch, "meta")
    assert moved["a"].device.type == "meta"
    assert isinstance(moved["b"], list) and moved["b"][0].device.type == "meta"
    assert isinstance(moved["b"][1], tuple) and moved["b"][1][1] == 7
    assert isinstance(moved["c"], Pair) and moved["c"].x.device.type == "meta" and moved["c"].y == "label"
    assert isinstance(moved["d"], OrderedDict) and moved["d"]["e"].device.type == "meta"
    assert batch["a"].device.type == "cpu"  # the input is not modified


def test_to_device_on_the_same_device_returns_the_same_storage():
    x = torch.arange(4.0)
    assert to_device(x, "cpu").data_ptr() == x.data_ptr()
