"""A fast fake engine for the TUI's tests and benchmarks: no torch, deterministic, built on engine.theory.

The "measurement" is the theory's own prediction (engine.theory.predict_or_reason: the mean-field
recursion of the real engine, with no second copy of its formulas here) plus finite-width noise per
trial drawn from the seed, packed as a RunResult with the real layout (stats [T, L, 7], hist [T, L, B])
and the tensors of the shared interface (engine/result.py TENSORS):

    pre, post                always
    normed                   when the spec has a norm
    out                      when the spec has a residual
    grad, grad_pre           when the spec asks for gradients
    grad_out                 with gradients and a residual

Tensor t's curve is the prediction's `t_mean` (0 for gradients, zero-mean by the symmetry of the loss
weights u) and `t_std`. A prediction from before the norm/residual theory has no normed_*/out_*/
grad_out_std arrays: the tensor then borrows its neighbour's curve (normed <- pre, out <- post,
grad_out <- grad), so the app's layout can be tested either way; the numbers of those tensors are then
not a claim about anything. Likewise a block where the prediction of normed, out or grad_out is NaN. Where the prediction is NaN (it overflowed, or has no value) or beyond the
dtype's range, the block comes out non-finite, as a real run that overflowed. File and digits data are
taken to have mean 0 and second moment 1 (what predict needs of rows it cannot see).

Options: `delay` seconds per layer (to test progress and cancel), `fail` an exception to raise,
`elapsed` the reported time (fixed so screenshots are stable), `device` the device string shown.
"""

from __future__ import annotations

import time

import numpy as np
from initscope.engine.errors import Cancelled
from initscope.engine.result import STAT_NAMES, RunResult
from initscope.engine.spec import DTYPE_MAX, RunSpec
from initscope.engine.theory.safe import predict_or_reason

EDGES = np.linspace(-4.0, 4.0, 41)
ALL_TENSORS = ("pre", "normed", "post", "out", "grad", "grad_pre", "grad_out")  # the shared interface's order
BORROW = {"normed": "pre", "out": "post", "grad_out": "grad"}  # stand-in curve while the theory lacks one
HIST_SAMPLES = 400


def present_tensors(spec: RunSpec) -> tuple[str, ...]:
    """The tensors a run of `spec` measures, in the interface's order (RunResult.tensors)."""
    present = {"pre": True, "normed": spec.has_norm, "post": True, "out": spec.has_residual,
               "grad": spec.grad, "grad_pre": spec.grad, "grad_out": spec.grad and spec.has_residual}
    return tuple(t for t in ALL_TENSORS if present[t])


def curve(prediction, tensor: str, stat: str) -> np.ndarray:
    """The prediction's [L] array for (tensor, stat); gradients have mean 0; a missing array, or NaN
    blocks of normed/out/grad_out where the neighbour has a value, borrow the neighbour's."""
    depth = len(prediction.pre_std)
    if stat == "mean" and tensor.startswith("grad"):
        return np.zeros(depth)
    attr = getattr(prediction, f"{tensor}_{stat}", None)
    own = np.full(depth, np.nan) if attr is None else np.asarray(attr, dtype=float)
    if tensor in BORROW:
        return np.where(np.isnan(own), curve(prediction, BORROW[tensor], stat), own)
    return own


class FakeEngine:
    def __init__(self, delay: float = 0.0, fail: BaseException | None = None, elapsed: float = 0.05,
                 device: str = "cpu") -> None:
        self.delay = delay
        self.fail = fail
        self.elapsed = elapsed
        self.device = device
        self.calls: list[RunSpec] = []

    def run(self, spec: RunSpec, *, progress=None, cancelled=None) -> RunResult:
        with np.errstate(all="ignore"):
            return self._run(spec, progress, cancelled)

    def _run(self, spec: RunSpec, progress, cancelled) -> RunResult:
        self.calls.append(spec)
        if self.fail is not None:
            raise self.fail
        L, T = spec.depth, spec.trials
        described = spec.data.name in ("gaussian", "uniform")  # the spec says its moments
        pred = predict_or_reason(spec, data_mean=None if described else 0.0,
                                 data_second_moment=None if described else 1.0)
        for li in range(L):  # the real engine's rhythm: progress per block, cancel checked per block
            if cancelled is not None and cancelled():
                raise Cancelled("cancelled")
            if progress is not None:
                progress(li + 1, L)
            if self.delay:
                time.sleep(self.delay)
        rng = np.random.default_rng(spec.seed)
        width = np.array(spec.arch[1:], dtype=float)
        top = DTYPE_MAX[spec.dtype]
        stats: dict[str, np.ndarray] = {}
        hist: dict[str, np.ndarray] = {}
        for name in present_tensors(spec):
            mean, std = curve(pred, name, "mean"), curve(pred, name, "std")
            arr = np.zeros((T, L, len(STAT_NAMES)))
            h = np.zeros((T, L, len(EDGES) - 1))
            for t in range(T):
                # relative spread of a pooled std over n units x B rows, plus the network-to-network part
                noise = 1 + rng.standard_normal(L) * np.sqrt(np.arange(1, L + 1) / (width * spec.batch) + 1 / width)
                sd = std * noise
                mu = mean + rng.standard_normal(L) * std / np.sqrt(width * spec.batch)
                bad = ~np.isfinite(sd) | (np.abs(sd) > top) | ~np.isfinite(mu)
                arr[t, :, 0] = np.where(bad, np.nan, mu)
                arr[t, :, 1] = np.where(bad, np.nan, sd)
                arr[t, :, 2] = np.where(bad, np.nan, np.sqrt(mu**2 + sd**2))
                arr[t, :, 3] = np.where(bad, np.nan, mu - 3 * sd)
                arr[t, :, 4] = np.where(bad, np.nan, mu + 3 * sd)
                arr[t, :, 5] = 0.0  # the fake draws no zeros (it samples a Gaussian of the predicted mean and std)
                arr[t, :, 6] = np.where(bad, 1.0, 0.0)
                for li in np.flatnonzero(~bad):
                    sample = mu[li] + sd[li] * rng.standard_normal(HIST_SAMPLES)
                    h[t, li] = np.histogram(sample, EDGES)[0]
            stats[name] = arr
            hist[name] = h
        var_w = np.asarray(pred.sigma_w2, dtype=float) / np.array(spec.arch[:-1], dtype=float)
        w = np.stack([np.zeros(L), np.sqrt(var_w)], axis=1)[None].repeat(T, axis=0)
        return RunResult(spec=spec, device=self.device, dtype=spec.dtype, elapsed_s=self.elapsed, stats=stats,
                         weight=w, hist_edges=EDGES.copy(), hist=hist, theory=pred,
                         data_mean=float(pred.input_mean), data_second_moment=float(pred.input_second_moment),
                         **_pairs(spec, pred, rng))


def _pairs(spec: RunSpec, pred, rng) -> dict:
    """With --pair-corr: corr = the predicted c^l (pair_corr_pre/post/out) plus noise of ~(1 - c^2)/sqrt(n) per
    trial, clipped to [-1, 1]; corr_input = the predicted c^0 plus the same kind of noise (docs/pairs.md)."""
    if spec.pair_corr is None:
        return {}
    from initscope.engine.theory.correlation import input_pair_corr

    width = np.array(spec.arch[1:], dtype=float)
    keys = ("pre", "post", "out") if spec.has_residual else ("pre", "post")
    corr = {}
    for key in keys:
        c = np.asarray(getattr(pred, f"pair_corr_{key}"), dtype=float)
        corr[key] = np.clip(c + rng.standard_normal((spec.trials, spec.depth)) * (1 - c * c) / np.sqrt(width), -1, 1)
    c0 = input_pair_corr(spec, spec.pair_corr)
    return {"corr": corr, "corr_input": c0 + rng.standard_normal(spec.trials) * (1 - c0 * c0) / np.sqrt(spec.arch[0])}
