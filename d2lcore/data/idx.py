"""The IDX file format of (Fashion-)MNIST, read and written without any dataset library.

An IDX file is a 4-byte magic number (two zero bytes, a type code, the number of dimensions),
one big-endian uint32 per dimension, then the values in row-major order. Files are often
gzipped; ``read_bytes`` undoes that, ``parse_idx`` turns the raw bytes into a tensor.
"""
from __future__ import annotations

import gzip
import math
import struct
import zlib
from pathlib import Path

import numpy as np
import torch

# Type code -> element type on disk (multi-byte values are big-endian). MNIST-style data uses 0x08.
_DTYPES = {0x08: np.dtype("u1"), 0x09: np.dtype("i1"), 0x0B: np.dtype(">i2"),
           0x0C: np.dtype(">i4"), 0x0D: np.dtype(">f4"), 0x0E: np.dtype(">f8")}
_CODES = {torch.uint8: 0x08, torch.int8: 0x09, torch.int16: 0x0B, torch.int32: 0x0C,
          torch.float32: 0x0D, torch.float64: 0x0E}


class IDXError(ValueError):
    """A file is not a valid IDX file: damaged gzip stream, wrong magic number, wrong length."""


def read_bytes(path: str | Path) -> bytes:
    """The contents of ``path``, decompressed if it is gzipped (recognised by its magic bytes,
    not by its name, so a renamed file still works)."""
    raw = Path(path).read_bytes()
    if raw[:2] != b"\x1f\x8b":
        return raw
    try:
        return gzip.decompress(raw)
    except (OSError, EOFError, zlib.error) as err:
        raise IDXError(f"{path}: the gzip stream is damaged or cut short ({err})") from err


def parse_idx(payload: bytes, name: str = "<bytes>") -> torch.Tensor:
    """Parse the (decompressed) bytes of an IDX file into a tensor of its shape and type.

    ``name`` (usually the file's path) is used in error messages.
    """
    if len(payload) < 4 or payload[:2] != b"\0\0" or payload[2] not in _DTYPES:
        found = payload[:4].hex(" ") or "nothing"
        raise IDXError(f"{name}: not an IDX file: the magic number is {found}, expected "
                       f"00 00 <type code, e.g. 08 for uint8> <number of dimensions>")
    dtype, ndim = _DTYPES[payload[2]], payload[3]
    header = 4 + 4 * ndim
    if len(payload) < header:
        raise IDXError(f"{name}: truncated IDX header: {len(payload)} bytes, but {ndim} dimensions "
                       f"need {header}")
    shape = struct.unpack(f">{ndim}I", payload[4:header])
    expected = header + math.prod(shape) * dtype.itemsize
    if len(payload) != expected:
        what = "truncated" if len(payload) < expected else "longer than its header says"
        raise IDXError(f"{name}: {what}: {len(payload)} bytes, but a {dtype.name} array of shape "
                       f"{tuple(shape)} needs {expected}")
    values = np.frombuffer(payload, dtype=dtype, offset=header).reshape(shape)
    # A copy in native byte order: frombuffer's array is read-only, and torch wants it writable.
    return torch.from_numpy(values.astype(dtype.newbyteorder("="), copy=True))


def write_idx(path: str | Path, tensor: torch.Tensor, compress: bool | None = None) -> Path:
    """Write ``tensor`` as an IDX file, gzipped if ``compress`` (default: if the name ends in .gz).

    Used by the tests to make small fake datasets; returns the path.
    """
    if tensor.dtype not in _CODES:
        names = ", ".join(str(d).removeprefix("torch.") for d in _CODES)
        raise TypeError(f"IDX cannot store {tensor.dtype}; convert to one of {names}")
    code = _CODES[tensor.dtype]
    header = bytes([0, 0, code, tensor.ndim]) + struct.pack(f">{tensor.ndim}I", *tensor.shape)
    data = header + tensor.detach().cpu().contiguous().numpy().astype(_DTYPES[code]).tobytes()
    path = Path(path)
    if path.name.endswith(".gz") if compress is None else compress:
        data = gzip.compress(data, mtime=0)
    path.write_bytes(data)
    return path
