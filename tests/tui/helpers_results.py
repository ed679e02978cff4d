"""Build RunResult objects from numpy for TUI tests (no torch, no engine run).

    make_result(arch="512-512x20", trials=2, bins=40, lo=-10, hi=10, centre=0.0, spread=1.0, grad=True)

Each layer's histogram is a Gaussian bump of `total` entries centred at `centres[l]` (default: `centre`
for every layer) with std `spread`; the statistics follow from the same numbers (mean = centre, std =
spread, zero_frac = `zero_frac`), so tests can compare what is drawn with what went in.
"""

from __future__ import annotations

import numpy as np
from initscope.engine.result import STAT, STAT_NAMES, RunResult
from initscope.engine.spec import parse_spec


def bump_hist(edges: np.ndarray, centre: float, spread: float, total: float) -> np.ndarray:
    mids = (edges[:-1] + edges[1:]) / 2
    w = np.exp(-0.5 * ((mids - centre) / spread) ** 2)
    return np.round(total * w / w.sum()) if w.sum() > 0 else np.zeros_like(mids)  # whole counts: tails are 0


def make_result(arch: str = "512-512x20", *, trials: int = 2, bins: int = 40, lo: float = -10.0, hi: float = 10.0,
                centre: float = 0.0, spread: float = 1.0, centres=None, total: float = 512 * 512,
                zero_frac=0.5, grad: bool = True, theory=None, **spec_texts) -> RunResult:
    spec = parse_spec(arch=arch, grad="true" if grad else "false", trials=str(trials), **spec_texts)
    n_layers = spec.depth
    edges = np.linspace(lo, hi, bins + 1)
    centres = np.full(n_layers, centre) if centres is None else np.asarray(centres, dtype=float)
    zf = np.broadcast_to(np.asarray(zero_frac, dtype=float), (n_layers,))
    present = {"pre": True, "normed": spec.has_norm, "post": True, "out": spec.has_residual, "grad": grad,
               "grad_pre": grad, "grad_out": grad and spec.has_residual}  # the shared interface's rule
    tensors = tuple(t for t, here in present.items() if here)
    stats: dict[str, np.ndarray] = {}
    hist: dict[str, np.ndarray] = {}
    for t in tensors:
        s = np.zeros((trials, n_layers, len(STAT_NAMES)))
        s[:, :, STAT["mean"]] = centres
        s[:, :, STAT["std"]] = spread
        s[:, :, STAT["rms"]] = np.sqrt(centres**2 + spread**2)
        s[:, :, STAT["min"]] = centres - 4 * spread
        s[:, :, STAT["max"]] = centres + 4 * spread
        s[:, :, STAT["zero_frac"]] = zf
        stats[t] = s
        h = np.stack([bump_hist(edges, c, spread, total) for c in centres])  # [L, B]
        hist[t] = np.broadcast_to(h, (trials, n_layers, bins)).copy()
    weight = np.zeros((trials, n_layers, 2))
    weight[:, :, 1] = 0.0625
    return RunResult(spec=spec, device="cpu", dtype="float32", elapsed_s=0.01, stats=stats, weight=weight,
                     hist_edges=edges, hist=hist, theory=theory)
