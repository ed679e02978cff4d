"""Devices, dtypes and the memory check a run must pass before it starts."""

from __future__ import annotations

import torch

from .errors import RunError, SpecError
from .kinds.activations import ACTIVATIONS
from .spec import RunSpec

DTYPES: dict[str, torch.dtype] = {
    "float32": torch.float32,
    "float64": torch.float64,
    "bfloat16": torch.bfloat16,
    "float16": torch.float16,
}

GiB = float(1 << 30)
MEMORY_FRACTION = 0.9  # refuse a run whose estimate exceeds this share of the available memory


def dtype_of(name: str) -> torch.dtype:
    try:
        return DTYPES[name]
    except KeyError:
        raise SpecError("dtype", name, "choose one of " + ", ".join(DTYPES)) from None


def _mps_available() -> bool:
    mps = getattr(torch.backends, "mps", None)
    return bool(mps is not None and mps.is_available())


def resolve_device(name: str) -> torch.device:
    """'auto' (cuda if available, else mps, else cpu), 'cpu', 'cuda', 'cuda:N' or 'mps' -> torch.device.

    Raises SpecError with one sentence when the device is not there.
    """
    name = name.strip().lower()
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda", torch.cuda.current_device())
        if _mps_available():
            return torch.device("mps")
        return torch.device("cpu")
    if name == "cpu":
        return torch.device("cpu")
    if name.startswith("cuda"):
        if not torch.cuda.is_available():
            raise SpecError("device", name, "this machine has no CUDA GPU (torch.cuda.is_available() is False); "
                            "use cpu or auto")
        index = int(name.split(":", 1)[1]) if ":" in name else torch.cuda.current_device()
        count = torch.cuda.device_count()
        if index >= count:
            raise SpecError("device", name, f"this machine has {count} CUDA device(s), cuda:0 to cuda:{count - 1}")
        return torch.device("cuda", index)
    if name == "mps":
        if not _mps_available():
            raise SpecError("device", name, "this machine has no Apple MPS device "
                            "(torch.backends.mps.is_available() is False); use cpu or auto")
        return torch.device("mps")
    raise SpecError("device", name, "choose auto, cpu, cuda, cuda:N or mps")


def describe(device: torch.device) -> str:
    """'cpu', 'mps' or 'cuda:0 (NVIDIA H100 80GB HBM3)'."""
    if device.type == "cuda":
        index = device.index if device.index is not None else torch.cuda.current_device()
        return f"cuda:{index} ({torch.cuda.get_device_name(index)})"
    return device.type


def estimate_bytes(spec: RunSpec) -> int:
    """Peak memory of a run on its device, in bytes (an upper-side estimate).

    Forward-only runs hold one block at a time (engine/runner.py, _InPlaceForward): the input batch, W^l and
    b^l (and V^l with a residual), two activation buffers, the residual stream (with a residual), the norm's
    output and the previous block's output (with a norm: the norm makes a new tensor per block), and float32
    scratch for the statistics (sign buffer, a float32 copy for low-precision dtypes): flat in depth. With
    gradients, autograd keeps per block W^l (and V^l) and the tensors the backward needs: the activation's
    input (two for activations whose backward needs input and output, e.g. gelu), the norm's input, and with a
    residual the branch input a and the block output x^l; plus a few gradient-sized buffers.
    """
    e = torch.empty((), dtype=dtype_of(spec.dtype)).element_size()
    batch = spec.batch
    widths = spec.arch
    scratch = 4 * (2 if e < 4 else 1)  # float32 bytes per element for the sign buffer (+ the upcast copy)
    matrices = 2 if spec.has_residual else 1  # W, and V with a residual
    per_layer = []
    for n_in, n_out in zip(widths[:-1], widths[1:], strict=True):
        weights = e * (n_out * n_in + n_out) + (matrices - 1) * e * n_out * n_out
        if e < 4 or spec.init.name in ("orthogonal", "lsuv"):
            weights += 4 * 2 * n_out * n_in  # float32 draw / QR workspace
        per_layer.append((weights, n_in, n_out))
    data = e * batch * widths[0] + 8 * batch * widths[0]  # the batch, and the float64 file/normalise copy
    # [batch, width] tensors a block keeps besides the two activation buffers (forward-only runs)
    extra = (2 if spec.has_norm else 0) + (1 if spec.has_residual else 0)
    if not spec.grad:
        # reused buffers sized for the largest layer: W (and V), two activations, the float32 sign buffer
        widest = max(widths[1:])
        peak = (max(w for w, _, _ in per_layer) + (2 + extra) * e * batch * widest + scratch * batch * widest
                + e * batch * max(widths))  # + one transient (bias add / non-in-place activation / norm)
        return int(data + peak + 3 * 4 * (1 << 18))  # + the histogram sample chunk and its binning (runner.SAMPLE_FLOATS)
    # histogram samples of every layer (runner.HIST_ELEMENTS = 8192 per tensor, up to 7 tensors, float32)
    tensors = 4 + spec.has_norm + 2 * spec.has_residual
    samples = 4 * tensors * spec.depth * max(min(batch * n, 8192 + n) for n in widths[1:])
    saved_per_unit = ACTIVATIONS[spec.act.name].autograd_saves(spec.act.kwargs)  # per unit, from its record
    saved_per_unit += (1 if spec.has_norm else 0) + (2 if spec.has_residual else 0)
    saved = sum(w + e * batch * n_out * saved_per_unit for w, _, n_out in per_layer)
    widest = max(widths)
    transient = (3 * e + scratch) * batch * widest
    return int(data + saved + transient + samples)


def available_bytes(device: torch.device) -> int | None:
    """Free memory on the device: CUDA from torch.cuda.mem_get_info, CPU from /proc/meminfo MemAvailable.
    None where it cannot be known (then no check is made)."""
    if device.type == "cuda":
        free, _total = torch.cuda.mem_get_info(device)
        return int(free)
    if device.type == "cpu":
        try:
            with open("/proc/meminfo", encoding="ascii") as f:
                for line in f:
                    if line.startswith("MemAvailable:"):
                        return int(line.split()[1]) * 1024
        except (OSError, ValueError, IndexError):
            return None
    return None


def check_memory(spec: RunSpec, device: torch.device) -> int:
    """Refuse (RunError, one sentence with the estimate) a run that would not fit; return the estimate."""
    need = estimate_bytes(spec)
    have = available_bytes(device)
    if have is not None and need > MEMORY_FRACTION * have:
        what = "the batch, the widths or the depth" if spec.grad else "the batch or the widths"
        extra = ", or turn gradients off (forward-only runs hold one layer at a time)" if spec.grad else ""
        raise RunError(f"This run needs about {need / GiB:.1f} GiB but {describe(device)} has "
                       f"{have / GiB:.1f} GiB available; reduce {what}{extra}.")
    return need


__all__ = ["DTYPES", "dtype_of", "resolve_device", "describe", "estimate_bytes", "available_bytes",
           "check_memory"]
