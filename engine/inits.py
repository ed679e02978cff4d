"""Weight-initialization schemes: one short function per catalog entry, plus the dispatchers.

Every function fills a 2-D weight W of shape [fan_out, fan_in] (PyTorch's layout: fan_in = size(1),
fan_out = size(0)) in place, drawing from `generator`. Where torch.nn.init has the scheme it does the
drawing (same formulas, same fan conventions, same random stream: a scheme here and its torch.nn.init
counterpart give identical bits from the same generator state). LSUV's per-layer rescaling needs the
data, so it lives in engine/runner.py; here it contributes only its orthogonal start.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor
from torch.nn import init as tinit

from .catalog import activation_gain
from .textforms import Call

Generator = torch.Generator | None


def _fan(w: Tensor, mode: str) -> int:
    """fan_in = size(1), fan_out = size(0), as torch.nn.init._calculate_fan_in_and_fan_out for 2-D."""
    return w.shape[1] if mode == "fan_in" else w.shape[0]


def normal(w: Tensor, *, std: float, generator: Generator = None) -> None:
    """W ~ N(0, std^2) (torch.nn.init.normal_)."""
    tinit.normal_(w, 0.0, std, generator=generator)


def uniform(w: Tensor, *, bound: float, generator: Generator = None) -> None:
    """W ~ U(-bound, bound), Var = bound^2/3 (torch.nn.init.uniform_)."""
    tinit.uniform_(w, -bound, bound, generator=generator)


def xavier_normal(w: Tensor, *, gain: float = 1.0, generator: Generator = None) -> None:
    """W ~ N(0, std^2), std = gain * sqrt(2/(fan_in + fan_out)) (torch.nn.init.xavier_normal_)."""
    tinit.xavier_normal_(w, gain=gain, generator=generator)


def xavier_uniform(w: Tensor, *, gain: float = 1.0, generator: Generator = None) -> None:
    """W ~ U(-a, a), a = gain * sqrt(6/(fan_in + fan_out)) (torch.nn.init.xavier_uniform_)."""
    tinit.xavier_uniform_(w, gain=gain, generator=generator)


def kaiming_normal(w: Tensor, *, mode: str = "fan_in", gain: float = math.sqrt(2.0),
                   generator: Generator = None) -> None:
    """W ~ N(0, std^2), std = gain/sqrt(fan) (torch.nn.init.kaiming_normal_ with the gain given exactly).

    torch computes std = calculate_gain(...)/math.sqrt(fan) and calls normal_(0, std); doing the same
    with an explicit gain gives the same bits whenever the gains agree (relu, leaky_relu, tanh, ...).
    """
    tinit.normal_(w, 0.0, gain / math.sqrt(_fan(w, mode)), generator=generator)


def kaiming_uniform(w: Tensor, *, mode: str = "fan_in", gain: float = math.sqrt(2.0),
                    generator: Generator = None) -> None:
    """W ~ U(-a, a), a = sqrt(3) * gain/sqrt(fan) (torch.nn.init.kaiming_uniform_, gain given exactly)."""
    bound = math.sqrt(3.0) * (gain / math.sqrt(_fan(w, mode)))
    tinit.uniform_(w, -bound, bound, generator=generator)


def lecun_normal(w: Tensor, *, gain: float = 1.0, generator: Generator = None) -> None:
    """W ~ N(0, gain^2/fan_in) (= kaiming_normal_ with nonlinearity='linear' when gain = 1)."""
    kaiming_normal(w, mode="fan_in", gain=gain, generator=generator)


def lecun_uniform(w: Tensor, *, gain: float = 1.0, generator: Generator = None) -> None:
    """W ~ U(-a, a), a = gain * sqrt(3/fan_in)."""
    kaiming_uniform(w, mode="fan_in", gain=gain, generator=generator)


def orthogonal(w: Tensor, *, gain: float = 1.0, generator: Generator = None) -> None:
    """W = gain * Q (Saxe et al. 2014; torch.nn.init.orthogonal_): W W^T = gain^2 I (rows <= cols)
    or W^T W = gain^2 I (rows > cols)."""
    tinit.orthogonal_(w, gain=gain, generator=generator)


def trunc_normal(w: Tensor, *, std: float = 1.0, a: float = -2.0, b: float = 2.0,
                 generator: Generator = None) -> None:
    """W ~ N(0, std^2) redrawn until inside [a, b]: absolute bounds, no variance correction
    (torch.nn.init.trunc_normal_; std=1 gives an actual std of 0.8796)."""
    tinit.trunc_normal_(w, mean=0.0, std=std, a=a, b=b, generator=generator)


def torch_default(w: Tensor, *, generator: Generator = None) -> None:
    """nn.Linear.reset_parameters' weight: kaiming_uniform_(a=sqrt(5)), i.e. W ~ U(-1/sqrt(fan_in),
    1/sqrt(fan_in)), Var = 1/(3 fan_in). The bias half is engine.bias.torch_default."""
    tinit.kaiming_uniform_(w, a=math.sqrt(5), generator=generator)


def zeros(w: Tensor, *, generator: Generator = None) -> None:
    """W = 0 (a degenerate baseline: every unit computes the same thing)."""
    tinit.zeros_(w)


def resolved_gain(init: Call, act: Call) -> float | None:
    """The gain a scheme uses: its own `gain` parameter, or the activation's (kaiming, gain=auto)."""
    if "gain" not in init.kwargs:
        return None
    gain = init.get("gain")
    return activation_gain(act) if gain is None else float(gain)


def init_weight(w: Tensor, init: Call, act: Call, generator: Generator = None) -> None:
    """Fill w in place with the scheme `init` (a resolved catalog call) for activation `act`.

    lsuv gets its orthogonal start here; engine.runner does the data-driven rescaling.
    Low-precision weights (bfloat16/float16) are drawn in float32 and rounded, since some schemes
    (orthogonal's QR) have no half-precision kernels.
    """
    if w.dtype in (torch.bfloat16, torch.float16):
        w32 = torch.empty(w.shape, dtype=torch.float32, device=w.device)
        init_weight(w32, init, act, generator)
        w.copy_(w32)
        return
    p = init.kwargs  # torch.nn.init's functions run under no_grad themselves
    name = init.name
    if name == "normal":
        normal(w, std=float(p["std"]), generator=generator)
    elif name == "uniform":
        uniform(w, bound=float(p["bound"]), generator=generator)
    elif name == "xavier_normal":
        xavier_normal(w, gain=float(p["gain"]), generator=generator)
    elif name == "xavier_uniform":
        xavier_uniform(w, gain=float(p["gain"]), generator=generator)
    elif name == "kaiming_normal":
        kaiming_normal(w, mode=str(p["mode"]), gain=resolved_gain(init, act), generator=generator)
    elif name == "kaiming_uniform":
        kaiming_uniform(w, mode=str(p["mode"]), gain=resolved_gain(init, act), generator=generator)
    elif name == "lecun_normal":
        lecun_normal(w, gain=float(p["gain"]), generator=generator)
    elif name == "lecun_uniform":
        lecun_uniform(w, gain=float(p["gain"]), generator=generator)
    elif name in ("orthogonal", "lsuv"):
        orthogonal(w, gain=float(p.get("gain", 1.0)), generator=generator)
    elif name == "trunc_normal":
        trunc_normal(w, std=float(p["std"]), a=float(p["a"]), b=float(p["b"]), generator=generator)
    elif name == "torch_default":
        torch_default(w, generator=generator)
    elif name == "zeros":
        zeros(w)
    else:  # the catalog and this table must agree; a test walks every catalog entry
        raise KeyError(f"init scheme {name!r} has no implementation")


__all__ = ["normal", "uniform", "xavier_normal", "xavier_uniform", "kaiming_normal", "kaiming_uniform",
           "lecun_normal", "lecun_uniform", "orthogonal", "trunc_normal", "torch_default", "zeros",
           "init_weight", "resolved_gain"]
