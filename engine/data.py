"""Input batches x^0: Gaussian or uniform noise, rows of a file, or scikit-learn's digits.

`load_data(spec, device, dtype, generator)` gives the batch a run would use (and notes about it)
without running anything. Files are read with numpy.load(allow_pickle=False), numpy.loadtxt or
torch.load(weights_only=True): nothing is ever unpickled. Every user mistake (a missing, unreadable,
malformed, non-numeric or empty file, or a width that does not match) is one SpecError sentence.
"""

from __future__ import annotations

import math
import os
import warnings
import zipfile
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from .catalog import show
from .errors import SpecError
from .spec import RunSpec
from .textforms import Call, format_arch

FILE_SUFFIXES = (".npy", ".npz", ".csv", ".pt", ".pth")


@dataclass(frozen=True)
class Source:
    """A prepared data source: either fixed rows (file, digits) or a random distribution."""

    call: Call
    features: int
    rows: np.ndarray | None = None  # float64 [rows, features] for fixed data (already cut to the batch)
    notes: tuple[str, ...] = ()

    def batch(self, batch: int, *, device: torch.device, dtype: torch.dtype,
              generator: torch.Generator | None) -> Tensor:
        """The input batch [batch, features] (fixed data: its rows, the same in every trial)."""
        if self.rows is not None:
            return torch.as_tensor(self.rows, device=device).to(dtype)
        draw = torch.float32 if dtype in (torch.bfloat16, torch.float16) else dtype
        x = torch.empty(batch, self.features, device=device, dtype=draw)
        p = self.call.kwargs
        if self.call.name == "gaussian":
            x.normal_(float(p["mean"]), float(p["std"]), generator=generator)
        elif self.call.name == "uniform":
            x.uniform_(float(p["low"]), float(p["high"]), generator=generator)
        else:
            raise KeyError(f"data {self.call.name!r} has no implementation")
        return x if draw == dtype else x.to(dtype)


def _err(call: Call, allowed: str, fix: tuple[str, str] | None = None) -> SpecError:
    return SpecError("data", show("data", call), allowed, fix)


def _read_file(call: Call) -> np.ndarray:
    path = os.path.expanduser(str(call.get("path")))
    key = call.get("key")
    suffix = os.path.splitext(path)[1].lower()
    if suffix not in FILE_SUFFIXES:
        raise _err(call, "the file must end in " + ", ".join(FILE_SUFFIXES))
    if not os.path.exists(path):
        raise _err(call, f"there is no file {path!r} (relative paths start at {os.getcwd()})")
    if not os.path.isfile(path):
        raise _err(call, f"{path!r} is not a regular file")
    try:
        if suffix == ".npy":
            with open(path, "rb") as fh:
                arr = _read_npy(fh, os.path.getsize(path), call)
        elif suffix == ".npz":
            arr = _read_npz(path, key, call)
        elif suffix == ".csv":
            arr = _read_csv(path, call)
        else:
            arr = _read_torch(path, key, call)
    except SpecError:
        raise
    except ValueError as e:
        if "allow_pickle" in str(e) or "Object arrays" in str(e):
            raise _err(call, "the file holds Python objects, which initscope never unpickles; "
                       "save a numeric array") from None
        raise _err(call, f"the file could not be read as numbers ({_short(e)})") from None
    except (OSError, EOFError, zipfile.BadZipFile, RuntimeError) as e:
        raise _err(call, f"the file could not be read ({_short(e)})") from None
    except MemoryError:  # a backstop: the size checks above refuse files that promise more than they hold
        raise _err(call, "the file asks for more memory than this machine has") from None
    return _as_matrix(arr, call)


def _read_npy(fh, size: int, call: Call, where: str = "the .npy file") -> np.ndarray:
    """One .npy array from an open binary stream of `size` bytes. Its header is checked against the size
    first: numpy allocates what the header promises before reading, so a 200-byte file claiming shape
    (2^40, 8) would ask for 64 TiB."""
    version = np.lib.format.read_magic(fh)
    if version == (1, 0):
        shape, fortran, dtype = np.lib.format.read_array_header_1_0(fh)
    else:
        shape, fortran, dtype = np.lib.format.read_array_header_2_0(fh)
    if dtype.hasobject:
        raise ValueError("Object arrays cannot be loaded when allow_pickle=False")
    need = math.prod(shape) * dtype.itemsize
    have = size - fh.tell()
    if need > have:
        raise _err(call, f"{where} is truncated: its header promises shape {tuple(shape)} of {dtype} "
                   f"({need:,} bytes) but only {max(have, 0):,} bytes follow")
    fh.seek(0)
    return np.lib.format.read_array(fh, allow_pickle=False)


def _read_npz(path: str, key: object, call: Call) -> np.ndarray:
    """The array `key` (or the first array) of a .npz: a zip of .npy members; other members are not arrays."""
    with zipfile.ZipFile(path) as z:
        members = {info.filename[:-4]: info for info in z.infolist() if info.filename.endswith(".npy")}
        others = [info.filename for info in z.infolist() if not info.filename.endswith(".npy")]
        if not members:
            listed = f" (its members: {', '.join(others[:5])})" if others else ""
            raise _err(call, f"the .npz file holds no arrays{listed}")
        if key is not None and key not in members:
            what = f"member {key!r} is not an array (.npy)" if key in others else f"file has no array {key!r}"
            raise _err(call, f"the .npz {what}; it has " + ", ".join(members))
        info = members[key if key is not None else next(iter(members))]
        with z.open(info) as fh:
            return _read_npy(fh, info.file_size, call, f"the .npz member {info.filename!r}")


def _short(e: BaseException) -> str:
    text = " ".join(str(e).split())
    return (text[:120] + "...") if len(text) > 120 else (text or type(e).__name__)


def _read_csv(path: str, call: Call) -> np.ndarray:
    with open(path, encoding="utf-8", errors="replace") as f:
        first = f.readline()
    if not first.strip():
        raise _err(call, "the file is empty")
    skip = 0
    try:
        [float(v) for v in first.strip().split(",")]
    except ValueError:
        skip = 1  # a header row
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "input contained no data": _as_matrix says so in one sentence
        arr = np.loadtxt(path, delimiter=",", skiprows=skip, ndmin=2, dtype=np.float64)
    if skip and arr.size == 0:
        raise _err(call, "the file has a header row but no rows of numbers")
    return arr


def _read_torch(path: str, key: object, call: Call) -> np.ndarray:
    import pickle

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # protocol warnings; a refusal is reported below
            obj = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError:
        raise _err(call, "the file is not a plain saved tensor (torch.load(weights_only=True) refused it, "
                   "and initscope never unpickles arbitrary objects)") from None
    if isinstance(obj, dict):
        tensors = {str(k): v for k, v in obj.items() if isinstance(v, Tensor)}
        if not tensors:
            raise _err(call, "the saved dict holds no tensors")
        if key is not None and key not in tensors:
            raise _err(call, f"the saved dict has no tensor {key!r}; it has " + ", ".join(tensors))
        obj = tensors[key if key is not None else next(iter(tensors))]
    if not isinstance(obj, Tensor):
        raise _err(call, f"the file holds a {type(obj).__name__}, not a tensor or a dict of tensors")
    if obj.layout != torch.strided:
        raise _err(call, f"the tensor is sparse ({str(obj.layout).removeprefix('torch.')}); "
                   "save a dense one (tensor.to_dense())")
    if obj.is_complex() or not (obj.is_floating_point() or obj.dtype in (
            torch.bool, torch.uint8, torch.int8, torch.int16, torch.int32, torch.int64)):
        raise _err(call, f"the tensor has dtype {obj.dtype}, not a real number type")
    return obj.detach().to(torch.float64).numpy()


def _as_matrix(arr: np.ndarray, call: Call) -> np.ndarray:
    if arr.dtype == object or arr.dtype.kind not in "biuf":
        raise _err(call, f"the array has dtype {arr.dtype}, not numbers")
    if arr.ndim == 0:
        raise _err(call, "the file holds a single number, not rows of features")
    if arr.size == 0:
        raise _err(call, "the file holds no values (it is empty)")
    arr = arr.reshape(1, -1) if arr.ndim == 1 else arr.reshape(arr.shape[0], -1)
    arr = arr.astype(np.float64, copy=False)
    if not np.isfinite(arr).all():
        raise _err(call, "the file holds NaN or infinite values")
    return arr


def _digits(call: Call) -> np.ndarray:
    try:
        from sklearn.datasets import load_digits
    except ImportError:
        raise SpecError("data", "digits", "data digits needs scikit-learn (a dependency of initscope): pip install scikit-learn") from None
    return np.asarray(load_digits().data, dtype=np.float64)


def prepare(spec: RunSpec) -> Source:
    """Read (for file/digits) and check the data against the architecture; no torch device work."""
    call = spec.data
    if call.name in ("gaussian", "uniform"):
        return Source(call, spec.arch[0])
    if call.name == "file":
        arr = _read_file(call)
    elif call.name == "digits":
        arr = _digits(call)
    else:
        raise KeyError(f"data {call.name!r} has no implementation")
    notes: list[str] = []
    rows, features = arr.shape
    if features != spec.arch[0]:
        raise _err(call, f"the architecture starts with {spec.arch[0]} but the data has {features} features",
                   fix=("arch", format_arch((features, *spec.arch[1:]))))  # the whole arch, ready to use
    if rows < spec.batch:
        notes.append(f"The data has {rows} rows, fewer than the batch of {spec.batch}; all {rows} were used.")
    arr = arr[: spec.batch]
    if call.get("normalize"):
        mean = arr.mean()
        std = arr.std()
        if std > 0 and np.isfinite(std):
            arr = (arr - mean) / std
        else:
            arr = arr - mean
            notes.append("The data is constant, so normalize only subtracted its mean.")
    return Source(call, features, np.ascontiguousarray(arr), tuple(notes))


def load_data(spec: RunSpec, device: torch.device | str = "cpu", dtype: torch.dtype = torch.float32,
              generator: torch.Generator | None = None) -> tuple[Tensor, tuple[str, ...]]:
    """The input batch x^0 a run of `spec` would use (trial 0 when generator is seeded with spec.seed),
    and any notes about it (e.g. fewer rows than the batch)."""
    src = prepare(spec)
    device = torch.device(device)
    if generator is None and src.rows is None:
        generator = torch.Generator(device=device).manual_seed(spec.seed)
    return src.batch(spec.batch, device=device, dtype=dtype, generator=generator), src.notes


__all__ = ["Source", "prepare", "load_data", "FILE_SUFFIXES"]
