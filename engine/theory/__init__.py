"""Theory overlay: the infinite-width prediction, a finite-width band and diagnostics for a RunSpec.

numpy only (never torch, never scipy). Public API:
    predict(spec, *, data_mean=None, data_second_moment=None) -> Prediction
    explain(spec, prediction=None) -> Explanation            (engine/theory/explain.py)
Prediction arrays have one entry per block (index l-1 is block l); NaN where there is no prediction
(or where the tensor does not exist: normed without a norm, out and grad_out without a residual),
and `reason` says why. layer_json(l), diagnostics_json() and to_json() give plain floats/None, no NaN.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from ..kinds.biases import BIASES
from ..kinds.data import DATA
from ..spec import RunSpec
from .band import InputKernel, band, iid_kernel, no_band_reason
from .blocks import block_name, block_notes
from .correlation import DepthScales, depth_scales_vec, input_pair_corr, pair_band, pair_correlations
from .diagnostics import Diagnostics, diagnose, diagnose_blocks
from .explain import Explanation, explain  # a name bound here, so the submodule can never shadow it
from .gaussian import activation
from .meanfield import MeanField, run_meanfield

BAND_NOTE = ("band: one standard deviation of a single network's pooled std around the infinite-width value "
             "(finite width, finite batch and the batch's own kernel; derived in docs/band.md)")


def _f(x) -> float | None:
    x = float(x)
    return x if math.isfinite(x) else None


@dataclass
class Prediction:
    """Per-block predictions, all numpy float arrays of length L (NaN = no prediction)."""

    pre_mean: np.ndarray
    pre_std: np.ndarray
    post_mean: np.ndarray
    post_std: np.ndarray
    grad_std: np.ndarray  # std of g^l = dLoss/dx^l
    grad_pre_std: np.ndarray  # std of delta^l = dLoss/dh^l
    pre_std_lo: np.ndarray  # one-sigma finite-width band around pre_std
    pre_std_hi: np.ndarray
    post_std_lo: np.ndarray
    post_std_hi: np.ndarray
    chi1: np.ndarray  # sigma_w^2 E[phi'(h)^2] per block (norm/residual: the block's backward factor, formulas 16.5)
    corr: np.ndarray  # correlation of one unit's pre-activations for two different inputs
    sigma_w2: np.ndarray  # effective n_in Var[W]
    sigma_b2: np.ndarray
    input_mean: float
    input_second_moment: float
    reason: str | None  # why values are NaN (None when everything is predicted)
    notes: tuple[str, ...]
    diagnostics: Diagnostics
    meanfield: MeanField = field(repr=False)
    band_reason: str | None = None  # why the band is NaN where the std is predicted
    normed_mean: np.ndarray | None = None  # n = norm(h); NaN without a norm (None given: NaN)
    normed_std: np.ndarray | None = None
    out_mean: np.ndarray | None = None  # x^l = x^(l-1) + alpha V a; NaN without a residual
    out_std: np.ndarray | None = None
    grad_out_std: np.ndarray | None = None  # std of dLoss/dx^l; NaN without a residual
    pair_corr_pre: np.ndarray | None = None  # mean-field c^l of the pairs' pre-activations (NaN: no pair_corr)
    pair_corr_post: np.ndarray | None = None  # ... of the post-activations (uncentred cosine)
    pair_corr_out: np.ndarray | None = None  # ... of the block outputs (NaN without a residual)
    pair_corr_pre_lo: np.ndarray | None = None  # one-sigma finite-width band around pair_corr_pre
    pair_corr_pre_hi: np.ndarray | None = None
    pair_corr_reason: str | None = None  # why the pair correlations or their band are NaN
    depth_scales: DepthScales | None = None  # q*, c*, chi_1, xi_q, xi_c at the last block's sigma_w^2, sigma_b^2

    def __post_init__(self) -> None:
        for name in ("normed_mean", "normed_std", "out_mean", "out_std", "grad_out_std", "pair_corr_pre",
                     "pair_corr_post", "pair_corr_out", "pair_corr_pre_lo", "pair_corr_pre_hi"):
            if getattr(self, name) is None:
                setattr(self, name, np.full(len(self.pre_std), math.nan))

    @property
    def depth(self) -> int:
        return len(self.pre_std)

    @property
    def ok(self) -> bool:
        return self.reason is None

    def layer_json(self, layer: int) -> dict:
        """The per-layer `theory` object of docs/design.md (layer is 1-based); None where there is no prediction."""
        i = layer - 1
        return {"pre_std": _f(self.pre_std[i]), "post_mean": _f(self.post_mean[i]),
                "post_std": _f(self.post_std[i]), "grad_std": _f(self.grad_std[i]),
                "grad_pre_std": _f(self.grad_pre_std[i]), "normed_mean": _f(self.normed_mean[i]),
                "normed_std": _f(self.normed_std[i]), "out_mean": _f(self.out_mean[i]),
                "out_std": _f(self.out_std[i]), "grad_out_std": _f(self.grad_out_std[i])}

    def band_json(self, layer: int) -> dict:
        i = layer - 1
        return {"pre_std": [_f(self.pre_std_lo[i]), _f(self.pre_std_hi[i])],
                "post_std": [_f(self.post_std_lo[i]), _f(self.post_std_hi[i])]}

    def diagnostics_json(self) -> dict:
        d = self.diagnostics
        fp = d.fixed_point
        return {
            "phase": d.phase,
            "chi1": _f(d.phase_chi1),
            "fixed_point": {"kind": fp.kind, "q": None if fp.q is None else _f(fp.q),
                            "pre_std": None if fp.q is None else _f(math.sqrt(fp.q)),
                            "post_mean": None if fp.post_mean is None else _f(fp.post_mean),
                            "post_std": None if fp.post_std is None else _f(fp.post_std)},
            "depth_scale": None if d.depth_scale is None else _f(d.depth_scale),
            "grad_ratio_first_to_last": _f(d.grad_ratio),
            "leaves_range": None if d.leaves_at is None else
            {"layer": d.leaves_at, "how": d.leaves_how, "extrapolated": d.leaves_extrapolated},
            "chi1_per_layer": [_f(x) for x in d.chi1],
            "reason": self.reason,
            "notes": list(self.notes),
            "band": BAND_NOTE,
            "band_reason": self.band_reason,
            **_depth_json(self.depth_scales),
            "pair_corr_reason": self.pair_corr_reason,
        } | ({"block": d.block, "block_lines": list(d.block_lines)} if d.block is not None else {})

    def to_json(self) -> dict:
        return {"layers": [dict(self.layer_json(i + 1), band=self.band_json(i + 1)) for i in range(self.depth)],
                "diagnostics": self.diagnostics_json()}


def _depth_json(d: DepthScales | None) -> dict:
    """xi_c, xi_q, c_star, q_star as JSON numbers (None where NaN or infinite: xi_c at criticality)."""
    if d is None:
        return {"xi_c": None, "xi_q": None, "c_star": None, "q_star": None}
    return {"xi_c": _f(d.xi_c), "xi_q": _f(d.xi_q), "c_star": _f(d.c_star), "q_star": _f(d.q_star)}


def spec_depth_scales(spec: RunSpec, mf: MeanField, act) -> DepthScales | None:
    """depth_scales at the last block's sigma_w^2, sigma_b^2 and bias mean (plain stacks; None for norm or
    residual blocks, LSUV, or where the mean field stops)."""
    if mf.reason is not None or spec.has_norm or spec.has_residual or "lsuv" in mf.kinds or spec.depth == 0:
        return None
    d = depth_scales_vec(act, mf.sw2[-1:], mf.sb2[-1:], mf.pre_mean[-1:], q_start=mf.q[-1:])
    return DepthScales(*(float(d[k][0]) for k in ("q_star", "c_star", "chi1", "xi_q", "xi_c")))


def _pair_fields(spec: RunSpec, mf: MeanField) -> dict:
    """The Prediction's pair_corr_* fields: NaN (and a reason) when spec.pair_corr is None."""
    c = getattr(spec, "pair_corr", None)
    if c is None:
        return {"pair_corr_reason": "no input pairs (pair_corr is off)"}
    c0 = input_pair_corr(spec, c)
    pc = pair_correlations(spec, mf, c0)
    lo, hi, why = pair_band(spec, mf, pc, c0)
    return {"pair_corr_pre": pc.pre, "pair_corr_post": pc.post, "pair_corr_out": pc.out,
            "pair_corr_pre_lo": lo, "pair_corr_pre_hi": hi, "pair_corr_reason": pc.reason or why}


def predict(spec: RunSpec, *, data_mean: float | None = None, data_second_moment: float | None = None,
            data_kernel: InputKernel | None = None) -> Prediction:
    """The infinite-width prediction for spec. data_*: measured on the input batch (RunResult fields);
    needed only for file/digits data, whose moments the spec does not say (data_kernel: the batch's
    kernel, band.kernel_of_rows, for the band)."""
    kernel = data_kernel if data_kernel is not None else _iid_kernel(spec)
    mf = run_meanfield(spec, data_mean, data_second_moment, None if data_kernel is None else data_kernel.corr)
    act = activation(spec.act)
    homogeneous = act.homogeneous
    with np.errstate(invalid="ignore"):
        pre_std = np.sqrt(mf.q)
        post_std = np.sqrt(np.maximum(mf.m2 - mf.m1 * mf.m1, 0.0))
        post_std[~np.isfinite(mf.m2)] = math.nan
        grad_std = np.sqrt(mf.var_g)
        grad_pre_std = np.sqrt(mf.var_delta)
        normed_std = np.sqrt(mf.normed_var)
        out_std = np.sqrt(np.maximum(mf.out_m2 - mf.out_mean * mf.out_mean, 0.0))
        out_std[~np.isfinite(mf.out_m2)] = math.nan
        grad_out_std = np.sqrt(mf.var_gout)
    lsuv_tol = float(spec.init.get("tol")) if spec.init.name == "lsuv" else None
    block = block_name(spec)
    if block is not None:
        nan = np.full(spec.depth, math.nan)
        rel_pre, rel_post = nan, nan.copy()
        band_reason = no_band_reason(block)
    elif kernel is None:
        nan = np.full(spec.depth, math.nan)
        rel_pre, rel_post = nan, nan.copy()
        band_reason = (f"the band needs the kernel of the {spec.data.name} rows, measured by a run "
                       "(predict(spec, data_kernel=...))")
    else:
        lsuv = (float(spec.init.get("target")), lsuv_tol) if lsuv_tol is not None else None
        b = band(mf, act, spec.fan_in, spec.fan_out, kernel, BIASES[spec.bias.name].kurtosis, lsuv)
        rel_pre, rel_post, band_reason = b.rel_pre, b.rel_post, b.reason
    notes = list(mf.notes)
    if spec.init.name == "orthogonal":
        notes.append("orthogonal weights: same means and stds as Gaussian ones with sigma_w^2 = "
                     "gain^2 min(1, n_in/n_out); they differ in the Jacobian spectrum, not in these curves")
    if spec.init.name == "lsuv" and block is None:
        tgt = float(spec.init.get("target"))
        lo, hi = np.full(spec.depth, max(0.0, tgt - lsuv_tol)), np.full(spec.depth, tgt + lsuv_tol)
    else:
        lo, hi = pre_std * np.maximum(0.0, 1.0 - rel_pre), pre_std * (1.0 + rel_pre)
    if block is None:
        diag = diagnose(mf, act, pre_std, grad_std, homogeneous)
    else:
        diag = diagnose_blocks(spec, mf, act, pre_std, grad_std, grad_out_std)
        notes += block_notes(spec, mf)
    return Prediction(
        pre_mean=mf.pre_mean, pre_std=pre_std, post_mean=mf.m1.copy(), post_std=post_std, grad_std=grad_std,
        grad_pre_std=grad_pre_std, pre_std_lo=lo, pre_std_hi=hi,
        post_std_lo=post_std * np.maximum(0.0, 1.0 - rel_post), post_std_hi=post_std * (1.0 + rel_post),
        chi1=diag.chi1, corr=mf.corr, sigma_w2=mf.sw2, sigma_b2=mf.sb2, input_mean=mf.m0,
        input_second_moment=mf.s0, reason=mf.reason, notes=tuple(notes), diagnostics=diag, meanfield=mf,
        band_reason=mf.reason or band_reason, normed_mean=mf.normed_mean.copy(), normed_std=normed_std,
        out_mean=mf.out_mean.copy(), out_std=out_std, grad_out_std=grad_out_std,
        depth_scales=spec_depth_scales(spec, mf, act), **_pair_fields(spec, mf))


def _iid_kernel(spec: RunSpec) -> InputKernel | None:
    """The input kernel of Gaussian or uniform data (fresh entries every trial); None for fixed rows."""
    d = spec.data
    kind = DATA[d.name]
    iid = kind.iid_moments(kind.values(d))  # (mean, E[x^2], E[x^4]), None for fixed rows
    if iid is None:
        return None
    m, s0, m4 = iid
    return iid_kernel(m, s0, m4, spec.arch[0], spec.batch)


__all__ = ["predict", "explain", "Explanation", "Prediction", "Diagnostics"]
