"""The one call at the top of every notebook."""
from __future__ import annotations

import random

import numpy as np
import torch

from d2lcore.device import choose_device
from d2lcore.plot import use_style


def setup(seed: int = 0, threads: int = 2, device: str | None = None) -> torch.device:
    """Seed Python, NumPy and torch, apply the figure style, fix the thread count, pick a device.

    A fixed thread count makes floating-point sums (and so the numbers nbval checks) the same
    on a laptop and on a 64-core server. Returns the chosen device.
    """
    if threads < 1:
        raise ValueError(f"threads must be at least 1, got {threads}")
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)  # also seeds every CUDA device
    torch.set_num_threads(threads)
    use_style()
    return choose_device(device)
