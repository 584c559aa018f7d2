"""d2lcore: the small PyTorch package under the book "Deep Learning, Probably".

Typical notebook start::

    import d2lcore
    device = d2lcore.setup(seed=0)
"""
from d2lcore import data, device, likelihood, plot, train
from d2lcore.device import choose_device, to_device
from d2lcore.notebook import setup
from d2lcore.train import History, NonFiniteLossError, Step, evaluate, fit, step

__version__ = "0.2.0"
__all__ = [
    "data", "device", "likelihood", "plot", "train",
    "choose_device", "to_device", "setup", "fit", "evaluate", "step", "Step", "History", "NonFiniteLossError",
]
