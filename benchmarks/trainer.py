"""Seconds per epoch of d2lcore's training loop against two baselines, in one process.

For softmax regression, the 784-256-10 MLP and LeNet on FashionMNIST (one epoch each, training
plus the validation pass over the 10,000 test images, same seed and same initial weights):

- floor:      a bare loop over batches sliced before the clock starts (no loader at all);
- shuffled:   the same bare loop, but drawing each batch from a fresh permutation with one
              index_select per batch: what any loop that reshuffles every epoch must pay;
- d2lcore:    d2lcore.fit over FashionMNIST.loader (float images kept on the device, reshuffled per epoch);
- dataloader: the usual loop over DataLoader(TensorDataset(...)) with the same model and optimizer.

Each configuration runs ``--repeats`` times in interleaved order after one warm-up; the median
is reported with the ratios to the floor. Targets: d2lcore <= 1.10 x floor, and faster than the
DataLoader loop. Run: ``python benchmarks/trainer.py [--repeats 3] [--device cpu]``.
"""
from __future__ import annotations

import argparse
import statistics
import time

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

import d2lcore
from d2lcore.data import FashionMNIST


def softmax_regression():
    return nn.Sequential(nn.Flatten(), nn.Linear(784, 10))


def mlp():
    return nn.Sequential(nn.Flatten(), nn.Linear(784, 256), nn.ReLU(), nn.Linear(256, 10))


def lenet():
    model = nn.Sequential(
        nn.Conv2d(1, 6, kernel_size=5, padding=2), nn.Sigmoid(), nn.AvgPool2d(2, 2),
        nn.Conv2d(6, 16, kernel_size=5), nn.Sigmoid(), nn.AvgPool2d(2, 2), nn.Flatten(),
        nn.Linear(400, 120), nn.Sigmoid(), nn.Linear(120, 84), nn.Sigmoid(), nn.Linear(84, 10))
    for m in model:
        if isinstance(m, (nn.Conv2d, nn.Linear)):
            nn.init.xavier_uniform_(m.weight)
    return model


MODELS = {"softmax": (softmax_regression, 256), "mlp": (mlp, 256), "lenet": (lenet, 128)}


def synchronize(device):
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def fresh(build, device):
    torch.manual_seed(0)
    model = build().to(device)
    return model, torch.optim.SGD(model.parameters(), lr=0.1)


def run_floor(build, data, batch_size, device):
    g = torch.Generator().manual_seed(0)
    order = torch.randperm(len(data.train_labels), generator=g)
    X = (data.train_images[order].float() / 255).unsqueeze(1).to(device)
    y = data.train_labels[order].to(device)
    Xv = (data.test_images.float() / 255).unsqueeze(1).to(device)
    yv = data.test_labels.to(device)
    train = list(zip(X.split(batch_size), y.split(batch_size)))
    val = list(zip(Xv.split(1024), yv.split(1024)))
    model, opt = fresh(build, device)
    synchronize(device)
    start = time.perf_counter()
    model.train()
    for xb, yb in train:
        loss = F.cross_entropy(model(xb), yb)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    model.eval()
    with torch.inference_mode():
        correct = int(sum((model(xb).argmax(1) == yb).sum() for xb, yb in val))
    synchronize(device)
    return time.perf_counter() - start


def run_shuffled_floor(build, data, batch_size, device):
    X = (data.train_images.float() / 255).unsqueeze(1).to(device)
    y = data.train_labels.to(device)
    Xv = (data.test_images.float() / 255).unsqueeze(1).to(device)
    val = list(zip(Xv.split(1024), data.test_labels.to(device).split(1024)))
    g = torch.Generator().manual_seed(0)
    model, opt = fresh(build, device)
    synchronize(device)
    start = time.perf_counter()
    order = torch.randperm(len(y), generator=g).to(device)
    model.train()
    for index in order.split(batch_size):
        loss = F.cross_entropy(model(X.index_select(0, index)), y.index_select(0, index))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    model.eval()
    with torch.inference_mode():
        correct = int(sum((model(xb).argmax(1) == yb).sum() for xb, yb in val))
    synchronize(device)
    return time.perf_counter() - start


def run_d2lcore(build, data, batch_size, device):
    train = data.loader("train", batch_size=batch_size, device=device, seed=0)
    val = data.loader("test", batch_size=1024, device=device)
    model, opt = fresh(build, device)
    synchronize(device)
    start = time.perf_counter()
    d2lcore.fit(model, F.cross_entropy, opt, train, val=val, epochs=1, progress=False)
    synchronize(device)
    return time.perf_counter() - start


def run_dataloader(build, data, batch_size, device):
    X = (data.train_images.float() / 255).unsqueeze(1)
    Xv = (data.test_images.float() / 255).unsqueeze(1)
    g = torch.Generator().manual_seed(0)
    train = DataLoader(TensorDataset(X, data.train_labels), batch_size=batch_size, shuffle=True, generator=g)
    val = DataLoader(TensorDataset(Xv, data.test_labels), batch_size=1024)
    model, opt = fresh(build, device)
    synchronize(device)
    start = time.perf_counter()
    model.train()
    for xb, yb in train:
        xb, yb = xb.to(device), yb.to(device)
        loss = F.cross_entropy(model(xb), yb)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    model.eval()
    correct = 0
    with torch.inference_mode():
        for xb, yb in val:
            correct += (model(xb.to(device)).argmax(1) == yb.to(device)).sum().item()
    synchronize(device)
    return time.perf_counter() - start


LOOPS = {"floor": run_floor, "shuffled": run_shuffled_floor, "d2lcore": run_d2lcore, "dataloader": run_dataloader}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--device", default=None, help="default: d2lcore.choose_device()")
    parser.add_argument("--models", nargs="+", default=list(MODELS), choices=list(MODELS))
    args = parser.parse_args()
    device = d2lcore.setup(seed=0, device=args.device)
    data = FashionMNIST()
    print(f"device {device}, torch {torch.__version__}, {torch.get_num_threads()} threads, "
          f"median of {args.repeats} interleaved runs after one warm-up\n")
    print(f"{'model':8} {'floor s':>8} {'shuffled s':>11} {'d2lcore s':>10} {'DataLoader s':>13} "
          f"{'d2lcore/floor':>14} {'d2lcore/shuffled':>17} {'DataLoader/floor':>17}")
    for name in args.models:
        build, batch_size = MODELS[name]
        for loop in LOOPS.values():  # warm-up: allocator, kernels, caches
            loop(build, data, batch_size, device)
        times = {k: [] for k in LOOPS}
        for _ in range(args.repeats):
            for key, loop in LOOPS.items():
                times[key].append(loop(build, data, batch_size, device))
        med = {k: statistics.median(v) for k, v in times.items()}
        print(f"{name:8} {med['floor']:8.3f} {med['shuffled']:11.3f} {med['d2lcore']:10.3f} {med['dataloader']:13.3f} "
              f"{med['d2lcore'] / med['floor']:14.3f} {med['d2lcore'] / med['shuffled']:17.3f} "
              f"{med['dataloader'] / med['floor']:17.3f}", flush=True)


if __name__ == "__main__":
    main()
