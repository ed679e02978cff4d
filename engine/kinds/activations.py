"""Activation records: one `ActivationKind` per name of `--act`.

Each record carries
- the catalog entry (name, doc, parameters, formula);
- `torch(params) -> (fn, fn_)`: the out-of-place, differentiable function and the one that may overwrite
  its input (forward-only runs), built on first use (torch is imported inside, never at import time);
- `gain(params)`: the recommended gain, torch.nn.init.calculate_gain where torch has one; where it has
  none, 1/sqrt(E[phi(z)^2]), z ~ N(0, 1) (the He argument generalised: it keeps the second moment of each
  layer's input at 1 when pre-activations are standard normal), values by quadrature, checked in
  tests/engine/test_catalog.py;
- `shape(params)`: what engine/theory/gaussian.py needs for Gaussian expectations: `PiecewiseLinear`
  (segments, integrated exactly), `EluLike` (alpha, scale: the exponential branch in closed form) or
  `Smooth` (vectorised phi and phi' with the piecewise-linear asymptote it approaches for large |h|);
- flags: `monotone` (non-decreasing: min/max of phi(h) are phi(min h), phi(max h)), `piecewise_linear`
  (phi of a scalar equals phi inside a big tensor, bit for bit), `autograd_saves(params)` (tensors of the
  layer's size a run with gradients keeps per block: phi's output, which the next matmul saves, plus any
  other tensor phi's backward saves; for the memory estimate), `post_from_pre` ("relu": the
  post statistics follow from the pre tensor's; "identity": the post tensor IS the pre tensor; "");
- `story`: its sentence in `initscope explain` where the length map is not a plain scale factor
  ("{name}" and "{gain}" are filled in), and `variant(spec, prediction)`: paragraphs for its parameters.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from ..entries import AUTO, Entry, fparam
from ..numbers import fmt_text as _g

INF = math.inf
SQRT2PI = math.sqrt(2.0 * math.pi)

# SELU constants (Klambauer et al. 2017), as torch uses them.
SELU_ALPHA = 1.6732632423543772848170429916717
SELU_LAMBDA = 1.0507009873554804934193349852946

# ---------------------------------------------------------------------------------------------
# theory shapes

# piecewise-linear functions: segments (lo, hi, slope, intercept), phi(x) = slope * x + intercept
# on lo < x <= hi (the derivative at a breakpoint is the left segment's, as torch's backward has it)
Segments = tuple[tuple[float, float, float, float], ...]


@dataclass(frozen=True)
class PiecewiseLinear:
    """phi is linear on each segment: Gaussian expectations in closed form."""

    segments: Segments


@dataclass(frozen=True)
class EluLike:
    """phi(h) = scale * h for h > 0, scale * alpha * (e^h - 1) for h <= 0."""

    alpha: float
    scale: float


@dataclass(frozen=True)
class Smooth:
    """A smooth phi: `fn(x) -> (phi(x), phi'(x))` on numpy arrays, and the piecewise-linear function it
    approaches away from 0 (its error decays exponentially there, see engine/theory/gaussian.py)."""

    fn: Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]]
    asymptote: Segments


Shape = PiecewiseLinear | EluLike | Smooth


def _clamp_max(segs: list, maxv: float) -> list:
    out = []
    for lo, hi, a, c in segs:
        if a == 0.0:
            out.append((lo, hi, 0.0, min(c, maxv)))
            continue
        x0 = (maxv - c) / a  # where a x + c = maxv
        above_right = a > 0  # the line exceeds maxv to the right of x0 (a > 0) or to its left
        if (above_right and x0 >= hi) or (not above_right and x0 <= lo):
            out.append((lo, hi, a, c))
        elif (above_right and x0 <= lo) or (not above_right and x0 >= hi):
            out.append((lo, hi, 0.0, maxv))
        elif above_right:
            out += [(lo, x0, a, c), (x0, hi, 0.0, maxv)]
        else:
            out += [(lo, x0, 0.0, maxv), (x0, hi, a, c)]
    return out


def leaky_segments(leak: float, sub: float = 0.0, maxv: float | None = None) -> Segments:
    """min(leaky_relu(x, leak) - sub, maxv) as segments."""
    segs = [(-INF, 0.0, leak, -sub), (0.0, INF, 1.0, -sub)]
    if maxv is not None:
        segs = _clamp_max(segs, maxv)
    return tuple(segs)


def _sigmoid(x):
    return 0.5 * (1.0 + np.tanh(0.5 * x))


def _tanh(x):
    t = np.tanh(x)
    return t, 1.0 - t * t


def _sigm(x):
    s = _sigmoid(x)
    return s, s * (1.0 - s)


def _gelu(x):
    from ..theory.gaussian import ncdf  # the vectorised normal CDF lives with the Gaussian integrals

    p = ncdf(x)
    return x * p, p + x * np.exp(-0.5 * x * x) / SQRT2PI


def _silu(x):
    s = _sigmoid(x)
    return x * s, s * (1.0 + x * (1.0 - s))


def _softplus(x):
    return np.logaddexp(0.0, x), _sigmoid(x)


_SIGN = ((-INF, 0.0, 0.0, -1.0), (0.0, INF, 0.0, 1.0))
_STEP = ((-INF, 0.0, 0.0, 0.0), (0.0, INF, 0.0, 1.0))


# ---------------------------------------------------------------------------------------------
# torch functions (torch is imported when a run builds them)


def _relu_torch(p):
    import torch

    return torch.relu, torch.relu_


def _leaky_torch(p):
    import torch.nn.functional as F

    a = float(p["a"])
    return (lambda h: F.leaky_relu(h, a)), (lambda h: F.leaky_relu(h, a, inplace=True))


def _general_relu_torch(p):
    """fast.ai's GeneralRelu: leaky_relu(x, leak), then -= sub, then clamp_max(maxv) if maxv."""
    import torch.nn.functional as F

    leak, sub, maxv = float(p["leak"]), float(p["sub"]), p.get("maxv")
    maxv = None if maxv is None else float(maxv)

    def fn(h):
        x = F.leaky_relu(h, leak)
        if sub:
            x = x - sub
        if maxv is not None:
            x = x.clamp_max(maxv)
        return x

    def fn_(h):
        x = F.leaky_relu(h, leak, inplace=True)
        if sub:
            x.sub_(sub)
        if maxv is not None:
            x.clamp_max_(maxv)
        return x

    return fn, fn_


def _tanh_torch(p):
    import torch

    return torch.tanh, torch.tanh_


def _sigmoid_torch(p):
    import torch

    return torch.sigmoid, torch.sigmoid_


def _gelu_torch(p):
    import torch.nn.functional as F

    def fn(h):
        return F.gelu(h, approximate="none")

    return fn, fn  # torch has no in-place gelu


def _silu_torch(p):
    import torch.nn.functional as F

    return F.silu, (lambda h: F.silu(h, inplace=True))


def _selu_torch(p):
    import torch.nn.functional as F

    return F.selu, (lambda h: F.selu(h, inplace=True))


def _elu_torch(p):
    import torch.nn.functional as F

    alpha = float(p["alpha"])
    return (lambda h: F.elu(h, alpha)), (lambda h: F.elu(h, alpha, inplace=True))


def _softplus_torch(p):
    import torch.nn.functional as F

    return F.softplus, F.softplus  # torch has no in-place softplus


def _identity(h):
    return h


def _identity_torch(p):
    return _identity, _identity


# ---------------------------------------------------------------------------------------------
# gains


def leaky_gain(slope: float) -> float:
    """sqrt(2/(1 + slope^2)), written sqrt(2)/hypot(1, slope) so that a huge slope gives a tiny gain, not an
    OverflowError."""
    return math.sqrt(2.0) / math.hypot(1.0, slope)


def _elu_gain(p) -> float:
    """1/sqrt(E[elu(z)^2]) = 1.2452 for alpha = 1; other alphas use sqrt(2/(1 + alpha^2)), a leaky-relu-like
    approximation."""
    alpha = float(p["alpha"])
    return 1.2451983007007064 if alpha == 1.0 else leaky_gain(alpha)


# ---------------------------------------------------------------------------------------------
# Explain: the activation-specific paragraphs


def _no_variant(spec, p) -> list[str]:
    return []


def _general_relu_variant(spec, p) -> list[str]:
    out = []
    sub = float(spec.act.get("sub", 0.0))
    maxv = spec.act.get("maxv")
    if sub:
        s = p.meanfield.m2
        ratio = s[1] / s[0] if len(s) > 1 and s[0] > 0 else math.nan
        out.append(f"general_relu subtracts sub = {_g(sub)} after the relu: the post mean moves from "
                   f"{_g(p.post_mean[0] + sub)} to {_g(p.post_mean[0])} (recentred), but E[x^2] drops "
                   f"(block 1: {_g(s[0])}) so He's factor no longer holds exactly: block 2's E[x^2] is "
                   f"{_g(ratio)} times block 1's, and the std drifts {'down' if ratio < 1 else 'up'} with depth.")
    if maxv is not None:
        out.append(f"maxv = {_g(float(maxv))} clamps large activations; the prediction includes the clamp exactly.")
    return out


def _tanh_variant(spec, p) -> list[str]:
    if "gain" not in spec.init.kwargs:  # a scheme that scales with the gain (xavier, kaiming, lecun, orthogonal)
        return []
    fp = p.diagnostics.fixed_point
    if fp.kind == "stable" and p.diagnostics.phase == "chaotic":
        return [f"tanh with gain 5/3 (sigma_w^2 = {_g(p.sigma_w2[-1])}) sits in the chaotic phase "
                f"(chi_1 = {_g(fp.chi1)} > 1): the signal settles at pre std {_g(math.sqrt(fp.q))}, post std "
                f"{_g(fp.post_std)}, while two inputs decorrelate and gradients grow toward the input."]
    return []


def _selu_variant(spec, p) -> list[str]:
    fp = p.diagnostics.fixed_point
    if abs(p.sigma_w2[-1] - 1.0) > 1e-3 and fp.q is not None:
        return [f"SELU only self-normalises with sigma_w^2 = 1 (lecun_normal). Here sigma_w^2 = "
                f"{_g(p.sigma_w2[-1])} (torch's SELU gain 3/4 gives 0.5625), so the fixed point is pre std "
                f"{_g(math.sqrt(fp.q))}, post mean {_g(fp.post_mean)}, post std {_g(fp.post_std)}."]
    return []


_SMOOTH_STORY = (" {name} is smooth and grows like relu for large h; its recommended gain here is "
                 "1/sqrt(E[{name}(z)^2]) = {gain}.")
_RELU_LIKE_STORY = (" With a mean in the pre-activation (a bias), {name} no longer keeps a fixed fraction of "
                    "E[h^2]: the prediction integrates it exactly over the Gaussian pre-activation.")


# ---------------------------------------------------------------------------------------------
# the record


@dataclass(frozen=True, kw_only=True)
class ActivationKind(Entry):
    """One activation: catalog entry + torch function + gain + theory shape + flags + Explain text."""

    torch: Callable[[dict], tuple[Callable, Callable]]
    gain: Callable[[dict], float]
    shape: Callable[[dict], Shape]
    monotone: bool
    piecewise_linear: bool
    autograd_saves: Callable[[dict], int]
    post_from_pre: str
    story: str
    variant: Callable = _no_variant


def _const(x: float) -> Callable[[dict], float]:
    return lambda p: x


def _fixed(shape: Shape) -> Callable[[dict], Shape]:
    return lambda p: shape


def _general_relu_shape(p) -> Shape:
    maxv = p.get("maxv", AUTO)
    return PiecewiseLinear(leaky_segments(float(p["leak"]), float(p["sub"]), None if maxv is None else float(maxv)))


ACTIVATIONS: dict[str, ActivationKind] = {}


def register(kind: ActivationKind) -> ActivationKind:
    """Add (or replace) a record: the catalog, the torch side and the theory see it at once."""
    ACTIVATIONS[kind.name] = kind
    return kind


for _kind in [
    ActivationKind(
        name="relu", doc="max(0, x)", formula="relu(x) = max(0, x)",
        torch=_relu_torch, gain=_const(math.sqrt(2.0)), shape=_fixed(PiecewiseLinear(leaky_segments(0.0))),
        monotone=True, piecewise_linear=True, autograd_saves=_const(1), post_from_pre="relu", story=_RELU_LIKE_STORY),
    ActivationKind(
        name="leaky_relu", doc="x for x > 0, a*x otherwise", params=(fparam("a", 0.01, "negative slope", low=0.0),),
        formula="leaky_relu(x) = max(0, x) + a * min(0, x)",
        torch=_leaky_torch, gain=lambda p: leaky_gain(float(p["a"])),
        shape=lambda p: PiecewiseLinear(leaky_segments(float(p["a"]))),
        monotone=True, piecewise_linear=True, autograd_saves=_const(2),  # its backward keeps its input
        post_from_pre="", story=_RELU_LIKE_STORY),
    ActivationKind(
        name="general_relu", doc="fast.ai's GeneralRelu: leaky relu, shifted down by sub, clamped at maxv",
        params=(fparam("leak", 0.0, "negative slope", low=0.0), fparam("sub", 0.0, "subtracted after the relu"),
                fparam("maxv", AUTO, "upper clamp (auto = none)", optional=True)),
        formula="general_relu(x) = min(leaky_relu(x, leak) - sub, maxv)",
        torch=_general_relu_torch, gain=lambda p: leaky_gain(float(p["leak"])),  # sub and maxv ignored, as fast.ai
        shape=_general_relu_shape, monotone=True, piecewise_linear=True,
        # leaky_relu keeps its input; clamp_max keeps its own input as well
        autograd_saves=lambda p: 2 if p.get("maxv") is None else 3, post_from_pre="",
        story=(" general_relu = min(leaky_relu(h, leak) - sub, maxv) is piecewise linear, but the shift "
               "and the clamp make it lose relu's scaling: E[phi(h)^2] is no longer a fixed fraction of "
               "Var[h], so the kaiming gain no longer keeps E[x^2] constant. The prediction integrates it "
               "exactly over the Gaussian pre-activation."),
        variant=_general_relu_variant),
    ActivationKind(
        name="tanh", doc="hyperbolic tangent", formula="tanh(x)",
        torch=_tanh_torch, gain=_const(5.0 / 3), shape=_fixed(Smooth(_tanh, _SIGN)),
        monotone=True, piecewise_linear=False, autograd_saves=_const(1), post_from_pre="",
        story=(" tanh is close to the identity near 0 and saturates at +-1: for small q, E[tanh(h)^2] ~ q, "
               "for large q it tends to 1. So the length map has a fixed point q* (or decays to 0 when "
               "sigma_w^2 <= 1 with no bias) instead of a geometric trend."),
        variant=_tanh_variant),
    ActivationKind(
        name="sigmoid", doc="logistic function", formula="sigmoid(x) = 1/(1 + exp(-x))",
        torch=_sigmoid_torch, gain=_const(1.0), shape=_fixed(Smooth(_sigm, _STEP)),
        monotone=True, piecewise_linear=False, autograd_saves=_const(1), post_from_pre="",
        story=(" sigmoid outputs 0.5 at 0: its E[x^2] is dominated by the mean 0.25, so every layer "
               "feeds a large shared offset forward, and sigmoid'(h) <= 1/4 shrinks gradients.")),
    ActivationKind(
        name="gelu", doc="Gaussian error linear unit (exact, erf form)", formula="gelu(x) = x * Phi(x)",
        torch=_gelu_torch, gain=_const(1.5335304411955353), shape=_fixed(Smooth(_gelu, leaky_segments(0.0))),
        monotone=False, piecewise_linear=False, autograd_saves=_const(2), post_from_pre="", story=_SMOOTH_STORY),
    ActivationKind(
        name="silu", doc="sigmoid-weighted linear unit (swish)", formula="silu(x) = x * sigmoid(x)",
        torch=_silu_torch, gain=_const(1.6765324703310909), shape=_fixed(Smooth(_silu, leaky_segments(0.0))),
        monotone=False, piecewise_linear=False, autograd_saves=_const(2), post_from_pre="", story=_SMOOTH_STORY),
    ActivationKind(
        name="selu", doc="Klambauer et al. 2017, self-normalizing",
        formula="selu(x) = lambda * (x if x > 0 else alpha * (exp(x) - 1)), alpha = 1.6733, lambda = 1.0507",
        torch=_selu_torch, gain=_const(3.0 / 4), shape=_fixed(EluLike(SELU_ALPHA, SELU_LAMBDA)),
        monotone=True, piecewise_linear=False, autograd_saves=_const(2), post_from_pre="",
        story=(" SELU (Klambauer et al. 2017) is built so that mean 0 and variance 1 is a stable fixed point "
               "when sigma_w^2 = 1 (lecun_normal)."),
        variant=_selu_variant),
    ActivationKind(
        name="elu", doc="exponential linear unit",
        params=(fparam("alpha", 1.0, "negative saturation value", positive=True),),
        formula="elu(x) = x if x > 0 else alpha * (exp(x) - 1)",
        torch=_elu_torch, gain=_elu_gain, shape=lambda p: EluLike(float(p["alpha"]), 1.0),
        monotone=True, piecewise_linear=False, autograd_saves=_const(2), post_from_pre="",
        story=" ELU is linear for h > 0 and saturates at -alpha below; it has no built-in fixed point."),
    ActivationKind(
        name="softplus", doc="smooth relu", formula="softplus(x) = log(1 + exp(x))",
        torch=_softplus_torch, gain=_const(1.0418668355353016), shape=_fixed(Smooth(_softplus, leaky_segments(0.0))),
        monotone=True, piecewise_linear=False, autograd_saves=_const(2), post_from_pre="", story=_SMOOTH_STORY),
    ActivationKind(
        name="identity", doc="no activation (a deep linear net)", formula="identity(x) = x",
        torch=_identity_torch, gain=_const(1.0), shape=_fixed(PiecewiseLinear(((-INF, INF, 1.0, 0.0),))),
        monotone=True, piecewise_linear=True, autograd_saves=_const(1), post_from_pre="identity",
        story=" With no activation the net is linear: each block multiplies E[x^2] by sigma_w^2 exactly."),
]:
    register(_kind)


def homogeneous_slope(segments: Segments) -> float | None:
    """a where phi(x) = relu(x) - a relu(-x) (identity: a = 1; relu: 0; leaky relu: its slope), else None.

    These are exactly the phi with phi(c x) = c phi(x) for c > 0 and slope 1 for x > 0: their Gaussian
    moments scale with q and their pair expectations have the arc-cosine closed forms."""
    if segments == ((-INF, INF, 1.0, 0.0),):
        return 1.0
    if len(segments) == 2:
        (lo0, hi0, a0, c0), (lo1, hi1, a1, c1) = segments
        if (lo0, hi0, lo1, hi1) == (-INF, 0.0, 0.0, INF) and a1 == 1.0 and c0 == 0.0 and c1 == 0.0:
            return a0
    return None


__all__ = ["ACTIVATIONS", "ActivationKind", "EluLike", "PiecewiseLinear", "Segments", "Shape", "Smooth",
           "SELU_ALPHA", "SELU_LAMBDA", "homogeneous_slope", "leaky_gain", "leaky_segments", "register"]
