"""Datasets as in-memory tensors, and minibatches sliced on the device."""
from d2lcore.data import ames
from d2lcore.data.batches import Batches
from d2lcore.data.fashion_mnist import (DataError, DatasetNotFoundError, DataWarning, FashionMNIST, image_grid,
                                       validation_indices)
from d2lcore.data.idx import IDXError, parse_idx, write_idx
from d2lcore.data.synthetic import NOISE_FAMILIES, SyntheticRegression

__all__ = ["ames", "Batches", "DataError", "DataWarning", "DatasetNotFoundError", "FashionMNIST", "IDXError",
           "NOISE_FAMILIES", "SyntheticRegression", "image_grid", "parse_idx", "validation_indices", "write_idx"]
