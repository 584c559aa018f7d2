"""What makes the classic LeNet's epoch slow on a CPU, and what each change buys.

One classic LeNet training step (batch 128, SGD, the published settings of section 7.6) is timed
under a series of variants that leave the model's mathematics unchanged (all but the two batch
sizes listed last): the same function of the same parameters, the same gradients up to float
rounding (checked below, before any timing). Each variant runs ``--steps`` training steps on the same fixed batches, ``--repeats`` times in
interleaved order after a warm-up; the median is reported as a ratio to the baseline measured in
the same process, and as seconds per 50,000-image epoch for context.

Variants:
- baseline:        nn.AvgPool2d and nn.Sigmoid, as the notebook builds it;
- mean-pool:       2x2 average pooling written as a reshape and a mean (the same four-number
                   mean; its backward is a broadcast rather than the pooling kernel's);
- depthwise pool:  the same pooling as a fixed depthwise convolution (weights 1/4, stride 2);
- unfold convs:    each convolution as F.unfold and one matrix product (section 7.2's way);
- no-oneDNN:       torch.backends.mkldnn disabled: convolutions take PyTorch's own im2col path;
- channels-last:   model and batches in torch.channels_last memory format;
- compiled:        torch.compile (inductor, C++ code generated for this CPU) of the whole model,
                   forward and backward fused where it can; compile time reported separately;
- 1 thread:        the baseline on one thread (the two-thread speed-up of these small kernels);
- batch 256, 512:  the same images in larger batches. Not the same training (fewer, larger
                   steps: the published settings use 128), so only a measure of what the
                   per-batch overheads and the kernels' efficiency at small batches cost.

Run on a quiet machine: ``python benchmarks/lenet_speed.py [--steps 60] [--repeats 3]
[--markdown FILE]``. Never part of `make test`.
"""
from __future__ import annotations

import argparse
import contextlib
import statistics
import time

import torch
import torch.nn.functional as F
from torch import nn

import d2lcore

BATCH = 128
EPOCH_IMAGES = 50_000


class MeanPool2x2(nn.Module):
    """2x2 average pooling, stride 2, as a reshape and a mean: the same mathematics as AvgPool2d(2)."""

    def forward(self, x):
        n, c, h, w = x.shape
        return x.reshape(n, c, h // 2, 2, w // 2, 2).mean(dim=(3, 5))


class DepthwisePool2x2(nn.Module):
    """2x2 average pooling as a fixed depthwise convolution (weights 1/4, stride 2): oneDNN's
    convolution kernel instead of the pooling kernel, the same four-number mean."""

    def forward(self, x):
        c = x.shape[1]
        return F.conv2d(x, x.new_full((c, 1, 2, 2), 0.25), stride=2, groups=c)


class UnfoldConv2d(nn.Conv2d):
    """The same convolution as an explicit im2col (F.unfold) and one matrix product, as section
    7.2 writes it: a few large GEMMs instead of oneDNN's direct kernels for tiny channel counts."""

    def forward(self, x):
        n, _, h, w = x.shape
        k, p = self.kernel_size[0], self.padding[0]
        cols = F.unfold(x, k, padding=p)                         # (N, C_in k k, L)
        out = self.weight.flatten(1) @ cols + self.bias[:, None]  # (N, C_out, L)
        return out.view(n, self.out_channels, h + 2 * p - k + 1, w + 2 * p - k + 1)


def lenet(pool=lambda: nn.AvgPool2d(2, 2), conv=nn.Conv2d):
    torch.manual_seed(0)
    model = nn.Sequential(
        conv(1, 6, kernel_size=5, padding=2), nn.Sigmoid(), pool(),
        conv(6, 16, kernel_size=5), nn.Sigmoid(), pool(), nn.Flatten(),
        nn.Linear(400, 120), nn.Sigmoid(), nn.Linear(120, 84), nn.Sigmoid(), nn.Linear(84, 10))
    for m in model:
        if isinstance(m, (nn.Conv2d, nn.Linear)):
            nn.init.xavier_uniform_(m.weight)
    return model


def batches(steps):
    g = torch.Generator().manual_seed(0)
    return [(torch.rand(BATCH, 1, 28, 28, generator=g), torch.randint(10, (BATCH,), generator=g))
            for _ in range(steps)]


def gradients(model, X, y):
    model.zero_grad()
    F.cross_entropy(model(X), y).backward()
    return [p.grad.clone() for p in model.parameters()]


class Variant:
    def __init__(self, name, build=lenet, context=contextlib.nullcontext, memory=None,
                 compiled=False, threads=None, merge=1):
        self.name, self.build, self.context = name, build, context
        self.memory, self.compiled, self.threads = memory, compiled, threads
        self.merge = merge  # batches of merge * BATCH images: the same images, fewer steps
        self.compile_seconds = None

    def prepare(self, data):
        model = self.build()
        if self.merge > 1:
            data = [(torch.cat([X for X, _ in data[i:i + self.merge]]),
                     torch.cat([y for _, y in data[i:i + self.merge]]))
                    for i in range(0, len(data) - self.merge + 1, self.merge)]
        if self.memory is not None:
            model = model.to(memory_format=self.memory)
            data = [(X.contiguous(memory_format=self.memory), y) for X, y in data]
        if self.compiled:
            model = torch.compile(model)
        self.model, self.data = model, data
        self.optimizer = torch.optim.SGD(model.parameters(), lr=0.1)

    def run(self):
        threads = torch.get_num_threads()
        if self.threads:
            torch.set_num_threads(self.threads)
        try:
            with self.context():
                start = time.perf_counter()
                for X, y in self.data:
                    self.optimizer.zero_grad(set_to_none=True)
                    F.cross_entropy(self.model(X), y).backward()
                    self.optimizer.step()
                return time.perf_counter() - start
        finally:
            torch.set_num_threads(threads)


def no_onednn():
    return torch.backends.mkldnn.flags(enabled=False)


VARIANTS = [
    Variant("baseline"),
    Variant("mean-pool", build=lambda: lenet(MeanPool2x2)),
    Variant("depthwise-conv pool", build=lambda: lenet(DepthwisePool2x2)),
    Variant("unfold convs", build=lambda: lenet(conv=UnfoldConv2d)),
    Variant("no-oneDNN", context=no_onednn),
    Variant("mean-pool + no-oneDNN", build=lambda: lenet(MeanPool2x2), context=no_onednn),
    Variant("channels-last", memory=torch.channels_last),
    Variant("depthwise pool + channels-last", build=lambda: lenet(DepthwisePool2x2),
            memory=torch.channels_last),
    Variant("compiled", compiled=True),
    Variant("compiled + channels-last", compiled=True, memory=torch.channels_last),
    Variant("1 thread", threads=1),
    Variant("batch 256 (not the published 128)", merge=2),
    Variant("batch 512 (not the published 128)", merge=4),
]


def check_same_mathematics(X, y):
    """Every variant's model computes the baseline's outputs and gradients, up to rounding."""
    reference_out = lenet()(X)
    reference_grads = gradients(lenet(), X, y)
    for variant in VARIANTS:
        if variant.compiled or variant.threads or variant.merge > 1:
            continue  # compiled: checked after compiling, in main(); threads change no code
        model = variant.build()
        inputs = X
        if variant.memory is not None:
            model = model.to(memory_format=variant.memory)
            inputs = X.contiguous(memory_format=variant.memory)
        with variant.context():
            torch.testing.assert_close(model(inputs), reference_out, rtol=1e-4, atol=1e-5)
            for g, r in zip(gradients(model, inputs, y), reference_grads):
                torch.testing.assert_close(g, r, rtol=1e-3, atol=1e-6)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=391)  # one epoch of batches
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--skip", nargs="*", default=[], help="variant names to leave out")
    parser.add_argument("--markdown", default=None)
    args = parser.parse_args()
    d2lcore.setup(seed=0)
    variants = [v for v in VARIANTS if v.name not in args.skip]
    data = batches(args.steps)
    check_same_mathematics(*data[0])
    for v in variants:
        start = time.perf_counter()
        v.prepare(data)
        if v.compiled:  # before any step: the same initial weights as a fresh baseline
            X, y = data[0]
            torch.testing.assert_close(v.model(X), lenet()(X), rtol=1e-4, atol=1e-5)
        v.run()  # warm-up; for the compiled model this is where compilation happens
        if v.compiled:
            v.compile_seconds = time.perf_counter() - start
    times = {v.name: [] for v in variants}
    for _ in range(args.repeats):
        for v in variants:
            times[v.name].append(v.run())
    base = statistics.median(times["baseline"])
    lines = [f"classic LeNet training steps, batch {BATCH}, {torch.get_num_threads()} threads, "
             f"{args.steps} steps x {args.repeats} repeats (median); torch {torch.__version__}",
             "", "| variant | x baseline | s per epoch |", "|---|---|---|"]
    for v in variants:
        t = statistics.median(times[v.name])
        images = (args.steps // v.merge) * v.merge * BATCH  # what the timed steps covered
        per_epoch = t / images * EPOCH_IMAGES
        note = f" (compiling took {v.compile_seconds:.0f} s)" if v.compile_seconds else ""
        lines.append(f"| {v.name}{note} | {t / base:.2f} | {per_epoch:.2f} |")
    print("\n".join(lines))
    if args.markdown:
        with open(args.markdown, "w") as f:
            f.write("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
