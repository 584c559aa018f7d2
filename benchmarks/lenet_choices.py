"""Section 7.6 offline: the modern LeNet's settings chosen on the validation split, and what
longer training gives. The notebook trains only the chosen settings (its time budget is one
minute); this script measures the alternatives once and prints the table the section quotes.

Every run: FashionMNIST "train" (50,000 images) for training, "val" (10,000) for the choice;
the test split is never touched here. Run: ``python benchmarks/lenet_choices.py [--long-only]``
(about 3 minutes on a quiet 2-core CPU). The models are those of section 7.6, written again
here so that the script runs on its own.
"""
from __future__ import annotations

import sys
import time

import torch
import torch.nn.functional as F
from torch import nn

import d2lcore
from d2lcore.data import FashionMNIST


def classic_lenet():
    torch.manual_seed(0)
    model = nn.Sequential(
        nn.Conv2d(1, 6, 5, padding=2), nn.Sigmoid(), nn.AvgPool2d(2, 2),
        nn.Conv2d(6, 16, 5), nn.Sigmoid(), nn.AvgPool2d(2, 2), nn.Flatten(),
        nn.Linear(400, 120), nn.Sigmoid(), nn.Linear(120, 84), nn.Sigmoid(),
        nn.Linear(84, 10))
    for m in model:
        if isinstance(m, (nn.Conv2d, nn.Linear)):
            nn.init.xavier_uniform_(m.weight)
    return model


def modern_lenet(batch_norm=True):
    torch.manual_seed(0)
    norm2d = nn.BatchNorm2d if batch_norm else (lambda c: nn.Identity())
    norm1d = nn.BatchNorm1d if batch_norm else (lambda c: nn.Identity())
    model = nn.Sequential(
        nn.Conv2d(1, 6, 5, padding=2), norm2d(6), nn.ReLU(), nn.MaxPool2d(2, 2),
        nn.Conv2d(6, 16, 5), norm2d(16), nn.ReLU(), nn.MaxPool2d(2, 2), nn.Flatten(),
        nn.Linear(400, 120), norm1d(120), nn.ReLU(), nn.Linear(120, 84), norm1d(84),
        nn.ReLU(), nn.Linear(84, 10))
    for m in model:
        if isinstance(m, (nn.Conv2d, nn.Linear)):
            nn.init.kaiming_normal_(m.weight, nonlinearity="relu")
            nn.init.zeros_(m.bias)
    return model


def run(data, device, model, optimizer, epochs, batch_size, cosine=False):
    train = data.loader("train", batch_size=batch_size, device=device)
    val = data.loader("val", batch_size=1024, device=device)
    scheduler = (torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=epochs)
                 if cosine else None)
    start = time.perf_counter()
    history = d2lcore.fit(model, F.cross_entropy, optimizer, train, val, epochs=epochs,
                          scheduler=scheduler, progress=False)
    return history, (time.perf_counter() - start) / epochs


def main():
    device = d2lcore.setup(seed=0)
    data = FashionMNIST()
    E = 5
    configs = {
        "ReLU + max pool + He, Adam 1e-3 (no BN)":
            lambda: (m := modern_lenet(False), torch.optim.Adam(m.parameters(), lr=1e-3), False),
        "... + batch norm, Adam 1e-3":
            lambda: (m := modern_lenet(True), torch.optim.Adam(m.parameters(), lr=1e-3), False),
        "... + batch norm, Adam 1e-3, cosine":
            lambda: (m := modern_lenet(True), torch.optim.Adam(m.parameters(), lr=1e-3), True),
        "... + batch norm, SGD 0.1 momentum 0.9, cosine":
            lambda: (m := modern_lenet(True),
                     torch.optim.SGD(m.parameters(), lr=0.1, momentum=0.9), True),
    }
    print(f"{E} epochs, batch 256: validation accuracy by epoch")
    for name, make in configs.items() if "--long-only" not in sys.argv else ():
        model, optimizer, cosine = make()
        history, seconds = run(data, device, model.to(device), optimizer, E, 256, cosine)
        print(f"{name:55s} " + " ".join(f"{a:.4f}" for a in history.val_accuracy)
              + f"  ({seconds:.1f} s/epoch)", flush=True)
    for epochs in (15,):
        model = modern_lenet(True).to(device)
        optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
        history, seconds = run(data, device, model, optimizer, epochs, 256, cosine=True)
        print(f"chosen settings (batch norm, SGD 0.1 momentum 0.9), {epochs} epochs (cosine over {epochs}): "
              + " ".join(f"{a:.4f}" for a in history.val_accuracy), flush=True)
    model = classic_lenet().to(device)
    history, seconds = run(data, device, model, torch.optim.SGD(model.parameters(), lr=0.1),
                           20, 128)
    print("classic LeNet, published settings, 20 epochs: "
          + " ".join(f"{a:.4f}" for a in history.val_accuracy), flush=True)


if __name__ == "__main__":
    main()
