"""Seconds per epoch of d2lcore's training loop against bare loops, in one process.

For every kind of model the book trains on FashionMNIST (one epoch each: training over the 50,000
"train" images plus the validation pass over the 10,000 "val" images, same seed, same initial
weights), five loops that all compute the same numbers (the epoch's mean training loss and
accuracy, the validation loss and accuracy; for the VAE, its two loss parts):

- floor:      a bare loop over batches sliced before the clock starts (no loader at all),
              metrics kept on the device and read once at the end;
- shuffled:   the same bare loop drawing each batch from a fresh permutation with one
              index_select per batch: what any loop that reshuffles every epoch must pay;
- d2lcore:    d2lcore.fit over FashionMNIST.loader (images kept on the device, reshuffled per epoch);
- item/batch: the shuffled loop reading the loss back with ``.item()`` after every batch, as
              many hand-written loops do (a host sync per batch; on a GPU it stalls the queue);
- DataLoader: the usual loop over DataLoader(TensorDataset(...)), ``.item()`` per batch.

The VAE is trained by a ``@d2lcore.step`` function, so the step-based path of ``fit`` is measured
too. Each configuration runs ``--repeats`` times in interleaved order after one warm-up; the
median is reported with its ratio to the floor and to the shuffled floor. For each model the
floating-point work of one epoch is counted with ``torch.utils.flop_counter`` (forward and
backward of the training batches, forward of the validation batches), and the achieved GFLOP/s
of the floor and of ``fit`` are printed, so the report says how close the floor is to what the
device can do.

Target (the performance issue): d2lcore <= 1.10 x the shuffled floor on this 2-core CPU, <= 1.05 x
on a GPU. Run on a quiet machine: ``python benchmarks/trainer.py [--repeats 3] [--device cpu]
[--models lenet mlp]``; ``--markdown FILE`` also writes the table as Markdown.
"""
from __future__ import annotations

import argparse
import statistics
import time
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, TensorDataset
from torch.utils.flop_counter import FlopCounterMode

import d2lcore
from d2lcore.data import FashionMNIST

VAL_BATCH = 1024


# --- the models -----------------------------------------------------------------------------

def softmax_regression():
    return nn.Sequential(nn.Flatten(), nn.Linear(784, 10))


def mlp():
    return nn.Sequential(nn.Flatten(), nn.Linear(784, 256), nn.ReLU(), nn.Linear(256, 10))


def dropout_mlp():
    return nn.Sequential(nn.Flatten(), nn.Linear(784, 256), nn.ReLU(), nn.Dropout(0.5),
                         nn.Linear(256, 256), nn.ReLU(), nn.Dropout(0.5), nn.Linear(256, 10))


def lenet():
    model = nn.Sequential(
        nn.Conv2d(1, 6, kernel_size=5, padding=2), nn.Sigmoid(), nn.AvgPool2d(2, 2),
        nn.Conv2d(6, 16, kernel_size=5), nn.Sigmoid(), nn.AvgPool2d(2, 2), nn.Flatten(),
        nn.Linear(400, 120), nn.Sigmoid(), nn.Linear(120, 84), nn.Sigmoid(), nn.Linear(84, 10))
    for m in model:
        if isinstance(m, (nn.Conv2d, nn.Linear)):
            nn.init.xavier_uniform_(m.weight)
    return model


class VAE(nn.Module):
    """784-400-(16 + 16) encoder, 16-400-784 Bernoulli decoder, as chapter 8 trains one."""

    def __init__(self, latent: int = 16):
        super().__init__()
        self.encoder = nn.Sequential(nn.Flatten(), nn.Linear(784, 400), nn.ReLU(), nn.Linear(400, 2 * latent))
        self.decoder = nn.Sequential(nn.Linear(latent, 400), nn.ReLU(), nn.Linear(400, 784))

    def terms(self, x):
        mean, log_var = self.encoder(x).chunk(2, dim=1)  # (B, latent) each
        z = mean + torch.randn_like(mean) * (0.5 * log_var).exp()
        logits = self.decoder(z)  # (B, 784)
        target = (x.flatten(1) > 0.5).float()  # binarised images: the Bernoulli decoder is exact
        reconstruction = F.binary_cross_entropy_with_logits(logits, target, reduction="none").sum(1)
        kl = 0.5 * (mean.square() + log_var.exp() - 1 - log_var).sum(1)
        return {"reconstruction": reconstruction.mean(), "kl": kl.mean()}


@d2lcore.step
def vae_step(model, batch):
    return model.terms(batch[0])


def classify(model, X, y):
    """The batch's loss parts and its number of correct predictions, all on the device."""
    output = model(X)
    return {"loss": F.cross_entropy(output, y)}, (output.detach().argmax(1) == y).sum()


def generate(model, X, y):
    return model.terms(X), None


@dataclass(frozen=True)
class Case:
    build: object
    batch_size: int
    lr: float
    objective: object  # (model, X, y) -> (parts, correct or None), what the bare loops compute
    loss: object       # what fit gets


CASES = {
    "softmax": Case(softmax_regression, 256, 0.1, classify, F.cross_entropy),
    "mlp": Case(mlp, 256, 0.1, classify, F.cross_entropy),
    "dropout": Case(dropout_mlp, 256, 0.1, classify, F.cross_entropy),
    "lenet": Case(lenet, 128, 0.1, classify, F.cross_entropy),
    "vae": Case(VAE, 256, 1e-3, generate, vae_step),
}


# --- the loops --------------------------------------------------------------------------------

def synchronize(device):
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def fresh(case, device):
    torch.manual_seed(0)
    model = case.build().to(device)
    optimizer = (torch.optim.Adam if case.build is VAE else torch.optim.SGD)(model.parameters(), lr=case.lr)
    return model, optimizer


class Sums:
    """Size-weighted sums of the loss parts and the correct count, kept on the device."""

    def __init__(self):
        self.parts, self.correct, self.n = {}, None, 0

    def add(self, parts, correct, size):
        for k, v in parts.items():
            self.parts[k] = self.parts.get(k, 0) + v.detach() * size
        if correct is not None:
            self.correct = correct if self.correct is None else self.correct + correct
        self.n += size

    def read(self):  # the one host sync
        values = [v / self.n for v in self.parts.values()]
        if self.correct is not None:
            values.append(self.correct / self.n)
        return torch.stack([torch.as_tensor(v, dtype=torch.float32) for v in values]).tolist()


def train_step(case, model, optimizer, X, y):
    parts, correct = case.objective(model, X, y)
    optimizer.zero_grad(set_to_none=True)
    sum(parts.values()).backward()
    optimizer.step()
    return parts, correct


def validate(case, model, val):
    model.eval()
    sums = Sums()
    with torch.inference_mode():
        for X, y in val:
            sums.add(*case.objective(model, X, y), len(y))
    model.train()
    return sums.read()


def run_floor(case, tensors, device):
    X, y, val = tensors["train_X"], tensors["train_y"], tensors["val"]
    g = torch.Generator().manual_seed(0)
    order = torch.randperm(len(y), generator=g).to(device)
    train = list(zip(X[order].split(case.batch_size), y[order].split(case.batch_size)))
    model, optimizer = fresh(case, device)
    synchronize(device)
    start = time.perf_counter()
    sums = Sums()
    for xb, yb in train:
        sums.add(*train_step(case, model, optimizer, xb, yb), len(yb))
    sums.read(), validate(case, model, val)
    return time.perf_counter() - start


def run_shuffled(case, tensors, device, item_per_batch=False):
    X, y, val = tensors["train_X"], tensors["train_y"], tensors["val"]
    g = torch.Generator().manual_seed(0)
    model, optimizer = fresh(case, device)
    synchronize(device)
    start = time.perf_counter()
    order = torch.randperm(len(y), generator=g).to(device)
    sums, losses = Sums(), []
    for index in order.split(case.batch_size):
        parts, correct = train_step(case, model, optimizer, X.index_select(0, index), y.index_select(0, index))
        if item_per_batch:
            losses.append(sum(parts.values()).item())  # a host sync every batch
        sums.add(parts, correct, len(index))
    sums.read(), validate(case, model, val)
    return time.perf_counter() - start


def run_item_per_batch(case, tensors, device):
    return run_shuffled(case, tensors, device, item_per_batch=True)


def run_d2lcore(case, tensors, device):
    data = tensors["data"]
    train = data.loader("train", batch_size=case.batch_size, device=device, seed=0)
    val = data.loader("val", batch_size=VAL_BATCH, device=device)
    model, optimizer = fresh(case, device)
    synchronize(device)
    start = time.perf_counter()
    d2lcore.fit(model, case.loss, optimizer, train, val=val, epochs=1, progress=False)
    synchronize(device)
    return time.perf_counter() - start


def run_dataloader(case, tensors, device):
    g = torch.Generator().manual_seed(0)
    train = DataLoader(TensorDataset(tensors["cpu_X"], tensors["cpu_y"]), batch_size=case.batch_size,
                       shuffle=True, generator=g)
    val = DataLoader(TensorDataset(tensors["cpu_val_X"], tensors["cpu_val_y"]), batch_size=VAL_BATCH)
    model, optimizer = fresh(case, device)
    synchronize(device)
    start = time.perf_counter()
    total = 0.0
    for xb, yb in train:
        parts, _ = train_step(case, model, optimizer, xb.to(device), yb.to(device))
        total += sum(parts.values()).item()
    validate(case, model, [(xb.to(device), yb.to(device)) for xb, yb in val])
    synchronize(device)
    return time.perf_counter() - start


LOOPS = {"floor": run_floor, "shuffled": run_shuffled, "d2lcore": run_d2lcore,
         "item/batch": run_item_per_batch, "DataLoader": run_dataloader}


# --- floating-point work ------------------------------------------------------------------------

def epoch_flops(case, tensors, device) -> int:
    """FLOPs of one epoch: forward + backward per training example, forward per validation example."""
    model, optimizer = fresh(case, device)
    X, y = tensors["train_X"][: case.batch_size], tensors["train_y"][: case.batch_size]
    with FlopCounterMode(display=False) as counter:
        parts, _ = case.objective(model, X, y)
        sum(parts.values()).backward()
    train = counter.get_total_flops() / case.batch_size
    model.eval()
    with FlopCounterMode(display=False) as counter, torch.inference_mode():
        case.objective(model, X, y)
    evaluate = counter.get_total_flops() / case.batch_size
    return int(train * len(tensors["train_y"]) + evaluate * len(tensors["val_y"]))


# --- report -------------------------------------------------------------------------------------

def prepare(device) -> dict:
    data = FashionMNIST()
    train_X, train_y = data.split("train")
    val_X, val_y = data.split("val")
    unit = lambda images: (images.float() / 255).unsqueeze(1)  # noqa: E731  (B, 1, 28, 28) in [0, 1]
    tensors = {"data": data, "cpu_X": unit(train_X), "cpu_y": train_y, "cpu_val_X": unit(val_X),
               "cpu_val_y": val_y}
    tensors["train_X"], tensors["train_y"] = tensors["cpu_X"].to(device), train_y.to(device)
    tensors["val_y"] = val_y.to(device)
    tensors["val"] = list(zip(tensors["cpu_val_X"].to(device).split(VAL_BATCH), val_y.to(device).split(VAL_BATCH)))
    return tensors


def measure(name, tensors, device, repeats) -> dict:
    case = CASES[name]
    for loop in LOOPS.values():  # warm-up: allocator, kernels, caches
        loop(case, tensors, device)
    times = {k: [] for k in LOOPS}
    for _ in range(repeats):
        for key, loop in LOOPS.items():
            times[key].append(loop(case, tensors, device))
    row = {k: statistics.median(v) for k, v in times.items()}
    row["gflop"] = epoch_flops(case, tensors, device) / 1e9
    return row


COLUMNS = ["model", "floor s", "shuffled s", "d2lcore s", "item/batch s", "DataLoader s",
           "d2lcore/floor", "d2lcore/shuffled", "item/shuffled", "GFLOP", "floor GFLOP/s", "fit GFLOP/s"]


def cells(name, row) -> list[str]:
    return [name, f"{row['floor']:.3f}", f"{row['shuffled']:.3f}", f"{row['d2lcore']:.3f}",
            f"{row['item/batch']:.3f}", f"{row['DataLoader']:.3f}", f"{row['d2lcore'] / row['floor']:.3f}",
            f"{row['d2lcore'] / row['shuffled']:.3f}", f"{row['item/batch'] / row['shuffled']:.3f}",
            f"{row['gflop']:.1f}", f"{row['gflop'] / row['floor']:.0f}", f"{row['gflop'] / row['d2lcore']:.0f}"]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--device", default=None, help="default: d2lcore.choose_device()")
    parser.add_argument("--models", nargs="+", default=list(CASES), choices=list(CASES))
    parser.add_argument("--markdown", default=None, help="also write the table to this Markdown file")
    args = parser.parse_args()
    device = d2lcore.setup(seed=0, device=args.device)
    tensors = prepare(device)
    header = (f"device {device}, torch {torch.__version__}, {torch.get_num_threads()} threads, "
              f"median of {args.repeats} interleaved runs after one warm-up")
    print(header + "\n")
    widths = [max(len(c), 8) for c in COLUMNS]
    print("  ".join(c.rjust(w) for c, w in zip(COLUMNS, widths)), flush=True)
    rows = []
    for name in args.models:
        rows.append(cells(name, measure(name, tensors, device, args.repeats)))
        print("  ".join(c.rjust(w) for c, w in zip(rows[-1], widths)), flush=True)
    if args.markdown:
        lines = [header, "", "| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
        lines += ["| " + " | ".join(r) + " |" for r in rows]
        with open(args.markdown, "w") as f:
            f.write("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
