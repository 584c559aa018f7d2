"""`python -m d2lcore.data`: find (or download) and verify FashionMNIST, and say where it is."""
import sys

from d2lcore.data import FashionMNIST

try:
    data = FashionMNIST()
except RuntimeError as err:
    sys.exit(f"FashionMNIST is not available: {err}")
print(f"FashionMNIST ready: {data.source}")
