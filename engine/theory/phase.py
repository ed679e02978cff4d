"""Theory-only phase diagrams: the sweep metrics predicted for many specs at once (docs/formulas.md 17.5).

predict_cells(specs) -> {metric: array [len(specs)]} for the metrics of a sweep cell (`initscope sweep`):
    log_q_ratio    = log10(E[(x^L)^2] / E[(x^0)^2])  (x^L the last block's output: post, or out with a residual)
    c_last         = c^L of the pairs' pre-activations h^L, from c^0 = the spec's pair_corr, or PHASE_C0
    log_grad_ratio = log10(std(g^1) / std(g^L))      (g^l = dLoss/dx^l; > 0: the gradient grows toward the input)
    chi1           = sigma_w^2 E[phi'(h)^2] at the fixed point q* (no fixed point: at the last block's q), as
                     Diagnostics.phase_chi1
    nonfinite_frac = NaN (measured only)
plus xi_c, xi_q (engine/theory/correlation.py) and the one-sigma bands log_q_ratio_lo/hi and c_last_lo/hi.
log_q_ratio is the infinite-width mean field; its band log_q_ratio_lo/hi is one sigma about the finite-width
expectation of a single trial's measured ratio (log_q_ratio_band: the concave length map's shift, the log's
Jensen term and the input second moment shared by the run's trials), so its midpoint lies below log_q_ratio
for tanh near the edge of chaos (docs/formulas.md 17.6).

Cells that share the activation and the architecture, with plain blocks, i.i.d. data and a relu-like
(bias mean 0) or smooth activation, are computed together: the mean-field recursion runs once over the
layers with numpy arrays over the cells: the same formulas as the per-spec prediction, the pair map from the
same table (correlation.py), the zero-mean moments of a smooth phi from a table within 1e-9 of the per-spec
quadrature, so the values agree to 1e-9 (tests/engine/theory/test_phase.py). Everything else (norm or residual blocks, LSUV, elu/selu,
biases with a mean on piecewise-linear phi, file or digits data) goes through the per-spec recursion.

Measured (benchmarks/bench_phase_theory.py, 50 x 50 cells x 100 layers of width 256, band=False, on 2 cores
shared with other jobs at load ~9): tanh 0.73-1.04 s, relu 0.25-0.39 s, once the first call of the process
has built the tables of a smooth phi (tanh ~4 s there). The bands (band=True) cost the per-spec band of
every cell, ~10 ms per block and cell: use band=False for a theory-only phase diagram.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from functools import lru_cache

import numpy as np

from ..kinds.data import DATA
from ..spec import RunSpec
from ..textforms import Call
from .band import MomentShift, moment_shift
from .band import band as std_band
from .blocks import block_name
from .correlation import (
    critical_sigma_w2,
    depth_scales_vec,
    input_pair_corr,
    moments_vec,
    pair_band,
    pair_correlations,
    pair_vec,
)
from .diagnostics import diagnose, diagnose_blocks
from .gaussian import activation
from .meanfield import bias_moments, run_meanfield, weight_variance

CELL_METRICS = ("log_q_ratio", "c_last", "log_grad_ratio", "chi1", "nonfinite_frac")
# The initial pair correlation c^0 that c_last starts from when a spec has no pair_corr: sweeps that do not
# set --pair-corr predict (and, when they measure pairs, measure) the map from c^0 = 0.5.
PHASE_C0 = 0.5
EXTRA_KEYS = ("xi_c", "xi_q", "log_q_ratio_lo", "log_q_ratio_hi", "c_last_lo", "c_last_hi")
_LN10 = math.log(10.0)


def predict_cells(specs: Sequence[RunSpec], *, band: bool = True) -> dict[str, np.ndarray]:
    """For every name in CELL_METRICS + EXTRA_KEYS an array [len(specs)] of predictions (NaN: none).
    band=False leaves the four band columns NaN (they need the per-spec band of every cell)."""
    n = len(specs)
    out = {k: np.full(n, math.nan) for k in CELL_METRICS + EXTRA_KEYS}
    groups: dict[tuple, list[int]] = {}
    for i, spec in enumerate(specs):
        groups.setdefault(_group_key(spec), []).append(i)
    for key, idx in groups.items():
        if key[0] == "vector":
            _vector_group([specs[i] for i in idx], np.array(idx), out)
        else:
            for i in idx:
                _scalar_cell(specs[i], i, out)
    if band:
        for i, spec in enumerate(specs):
            _cell_band(spec, i, out)
    return out


def critical_curve(act: Call, sigma_b2: np.ndarray) -> np.ndarray:
    """sigma_w^2 on chi_1 = 1 for each sigma_b^2 (same shape; correlation.critical_sigma_w2)."""
    sb = np.asarray(sigma_b2, dtype=float)
    return np.array([critical_sigma_w2(act, float(x)) for x in sb.ravel()]).reshape(sb.shape)


def log_q_ratio_band(log_q_mf: float, v_m2: float, shift: MomentShift, seed_var: float, trials: int
                     ) -> tuple[float, float]:
    """(centre, half-width) of the one-sigma band of a single trial's measured log_q_ratio (docs/formulas.md
    17.6). The measured ratio is log10(m2^L / m0bar), m0bar the input's second moment averaged over the T
    trials of the run; with v = v_S^L the relative variance of m2^L (band.Band.rel_m2 squared), v0 = seed_var
    that of one trial's m0, a = shift.input_gain and d = shift.rel_shift:

        centre = log_q_mf + log10(1 + d) - (v - v0/T)/(2 ln 10)      (E ln X = ln E X - Var(X)/(2 E[X]^2))
        half   = sqrt(v + v0 (1 - 2a)/T) / ln 10

    (a trial's m2^L carries a v0 of its own m0 through a; the shared m0bar carries v0/T, a/T of it the
    trial's own). NaN where any input is NaN."""
    var = v_m2 + seed_var * (1.0 - 2.0 * shift.input_gain) / max(1, trials)
    if not (math.isfinite(var) and var >= 0 and 1.0 + shift.rel_shift > 0):
        return math.nan, math.nan
    jensen = (v_m2 - seed_var / max(1, trials)) / (2 * _LN10)
    return log_q_mf + math.log10(1.0 + shift.rel_shift) - jensen, math.sqrt(var) / _LN10


def _c0(spec: RunSpec) -> float:
    c = getattr(spec, "pair_corr", None)
    return input_pair_corr(spec, PHASE_C0 if c is None else c)


_weight_variance = lru_cache(maxsize=4096)(weight_variance)  # one scheme call per (init, act, fan_in, fan_out)
_bias_moments = lru_cache(maxsize=4096)(bias_moments)


def _layer_params(spec: RunSpec, shapes: list[tuple[int, int]], which: np.ndarray
                  ) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    """(sigma_w^2, sigma_b^2, bias mean) per block, from the distinct (fan_in, fan_out) shapes of the
    architecture (`which`: the shape of each block), or None when the scheme has a caveat (per-spec path)."""
    vals = []
    for n_in, n_out in shapes:
        try:
            vw, kind, why = _weight_variance(spec.init, spec.act, n_in, n_out)
            bm, bv = _bias_moments(spec.bias, n_in)
        except (ArithmeticError, ValueError):
            return None
        if why is not None or kind == "lsuv" or not all(map(math.isfinite, (vw, bm, bv))):
            return None
        vals.append((vw * n_in, bv, bm))
    per_shape = np.array(vals).T  # [3, shapes]
    return per_shape[0][which], per_shape[1][which], per_shape[2][which]


def _group_key(spec: RunSpec) -> tuple:
    """("vector", act, arch) for cells the vectorised recursion covers, else ("scalar",)."""
    if spec.has_norm or spec.has_residual or spec.init.name == "lsuv" or spec.depth == 0:
        return ("scalar",)
    kind = DATA[spec.data.name]
    if kind.iid_moments(kind.values(spec.data)) is None:
        return ("scalar",)
    act = activation(spec.act)
    if act.smooth is None and act.slope is None:
        return ("scalar",)
    if act.slope is not None and _bias_moments(spec.bias, spec.arch[0])[0] != 0.0:
        return ("scalar",)
    return ("vector", spec.act, spec.arch)


def _vector_group(specs: list[RunSpec], idx: np.ndarray, out: dict) -> None:
    blocks = list(zip(specs[0].fan_in, specs[0].fan_out, strict=True))
    shapes = sorted(set(blocks))
    which = np.array([shapes.index(b) for b in blocks])
    params = [_layer_params(s, shapes, which) for s in specs]
    fallback = [i for i, p in enumerate(params) if p is None]
    for i in fallback:
        _scalar_cell(specs[i], int(idx[i]), out)
    keep = [i for i, p in enumerate(params) if p is not None]
    if not keep:
        return
    specs = [specs[i] for i in keep]
    idx = idx[keep]
    sw2 = np.stack([params[i][0] for i in keep])  # [cells, L]
    sb2 = np.stack([params[i][1] for i in keep])
    beta = np.stack([params[i][2] for i in keep])
    act = activation(specs[0].act)
    arch = specs[0].arch
    L = len(arch) - 1
    s0 = np.empty(len(specs))
    for j, spec in enumerate(specs):
        kind = DATA[spec.data.name]
        s0[j] = kind.iid_moments(kind.values(spec.data))[1]
    c0 = np.array([_c0(s) for s in specs])
    s, k = s0.copy(), c0 * s0
    d2 = np.full(sw2.shape, math.nan)
    c_pre = np.full(len(specs), math.nan)
    q = np.full(len(specs), math.nan)
    with np.errstate(all="ignore"):
        for i in range(L):
            q = sw2[:, i] * s + sb2[:, i]
            q[~(np.isfinite(q) & (q <= 1e300))] = math.nan  # the per-spec recursion stops there
            mu = beta[:, i]
            c_pre = (sw2[:, i] * k + sb2[:, i] + mu * mu) / (q + mu * mu)
            rho = (sw2[:, i] * k + sb2[:, i]) / q
            m = moments_vec(act, mu, q)
            d2[:, i] = m[2]
            e12 = pair_vec(act, mu, q, np.where(q > 0, rho, 1.0))
            s, k = m[1], e12
        log_q = np.log10(s / s0)
        n_out = np.array(arch[1:], dtype=float)
        n_in = np.array(arch[:-1], dtype=float)
        # Var(g^1)/Var(g^L) = prod_{l=2..L} n_l Var[W^l] E[phi'(h^l)^2]  (meanfield._backward)
        factors = (n_out[1:] / n_in[1:]) * sw2[:, 1:] * d2[:, 1:]
        log_grad = 0.5 * np.sum(np.log10(factors), axis=1) if L > 1 else np.zeros(len(specs))
        ds = depth_scales_vec(act, sw2[:, -1].copy(), sb2[:, -1].copy(), beta[:, -1].copy(), q_start=q)
    chi = np.where(np.isfinite(ds["chi1"]), ds["chi1"], sw2[:, -1] * d2[:, -1])
    for name, val in (("log_q_ratio", log_q), ("c_last", c_pre), ("log_grad_ratio", log_grad), ("chi1", chi),
                      ("xi_c", ds["xi_c"]), ("xi_q", ds["xi_q"])):
        out[name][idx] = val


def _scalar_cell(spec: RunSpec, i: int, out: dict) -> None:
    """One cell through the per-spec mean field (norm, residual, LSUV, elu, file data, ...)."""
    from . import spec_depth_scales

    mf = run_meanfield(spec)
    if mf.reason is not None or spec.depth == 0:
        return
    act = activation(spec.act)
    with np.errstate(all="ignore"):
        pre_std = np.sqrt(mf.q)
        grad_std = np.sqrt(mf.var_g)
        last_m2 = mf.out_m2[-1] if spec.has_residual else mf.m2[-1]
        out["log_q_ratio"][i] = math.log10(last_m2 / mf.s0) if last_m2 > 0 and mf.s0 > 0 else math.nan
        if block_name(spec) is None:
            diag = diagnose(mf, act, pre_std, grad_std, act.homogeneous)
        else:
            diag = diagnose_blocks(spec, mf, act, pre_std, grad_std, np.sqrt(mf.var_gout))
        r = diag.grad_ratio
        out["log_grad_ratio"][i] = math.log10(r) if r > 0 else (-math.inf if r == 0 else math.nan)
    out["chi1"][i] = diag.phase_chi1
    pc = pair_correlations(spec, mf, _c0(spec))
    out["c_last"][i] = pc.pre[-1]
    d = spec_depth_scales(spec, mf, act)
    if d is not None:
        out["xi_c"][i], out["xi_q"][i] = d.xi_c, d.xi_q


def _cell_band(spec: RunSpec, i: int, out: dict) -> None:
    """log_q_ratio_lo/hi: one sigma about the finite-width expectation of a single trial's measured ratio
    (docs/formulas.md 17.6; the log_q_ratio column stays the mean-field value), c_last_lo/hi from the pair
    band at the last block."""
    from . import _iid_kernel

    mf = run_meanfield(spec)
    if mf.reason is not None or spec.depth == 0 or spec.has_norm or spec.has_residual:
        return
    kernel = _iid_kernel(spec)
    if kernel is not None and "lsuv" not in mf.kinds:
        from ..kinds.biases import BIASES

        act = activation(spec.act)
        b = std_band(mf, act, spec.fan_in, spec.fan_out, kernel, BIASES[spec.bias.name].kurtosis)
        v = b.rel_m2[-1] ** 2 if b.rel_m2 is not None else math.nan
        centre, half = log_q_ratio_band(out["log_q_ratio"][i], v, moment_shift(mf, act, spec.fan_out, kernel),
                                        kernel.seed_var, spec.trials)
        if math.isfinite(centre) and math.isfinite(half):
            out["log_q_ratio_lo"][i] = centre - half
            out["log_q_ratio_hi"][i] = centre + half
    c0 = _c0(spec)
    pc = pair_correlations(spec, mf, c0)
    lo, hi, _ = pair_band(spec, mf, pc, c0)
    out["c_last_lo"][i], out["c_last_hi"][i] = lo[-1], hi[-1]
