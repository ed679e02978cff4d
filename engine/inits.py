"""Weight initialization, torch side: `init_weight` draws a layer's weights with the scheme's record.

Each scheme's draw is one short function in its record (engine/kinds/inits.py), as torch/nn/init.py has
one per scheme; this module resolves the gain and handles low-precision weights. Every draw fills a 2-D
weight W of shape [fan_out, fan_in] (PyTorch's layout) in place, drawing from `generator`; where
torch.nn.init has the scheme it does the drawing (same formulas, same fans, same random stream). LSUV's
per-layer rescaling needs the data, so it lives in engine/runner.py; here it gets its orthogonal start.
"""

from __future__ import annotations

import torch
from torch import Tensor

from .kinds.inits import INITS, scheme_params
from .textforms import Call

Generator = torch.Generator | None


def resolved_gain(init: Call, act: Call) -> float | None:
    """The gain a scheme uses: its own `gain` parameter, or the activation's (kaiming, gain=auto); None
    for a scheme without a gain."""
    if "gain" not in init.kwargs:
        return None
    return float(scheme_params(init, act)["gain"])


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
    scheme = INITS.get(init.name)
    if scheme is None:  # the parser only lets catalog names through
        raise KeyError(f"init scheme {init.name!r} has no record")
    scheme.draw(w, scheme_params(init, act), generator)  # torch.nn.init's functions run under no_grad


__all__ = ["init_weight", "resolved_gain"]
