"""Init scheme records: one `InitScheme` per name of `--init`.

Each record carries
- the catalog entry (name, doc, parameters, formula);
- `draw(w, params, generator)`: fills a 2-D weight W of shape [fan_out, fan_in] (PyTorch's layout:
  fan_in = size(1), fan_out = size(0)) in place. Where torch.nn.init has the scheme it does the drawing
  (same formulas, same fan conventions, same random stream: a scheme here and its torch.nn.init
  counterpart give identical bits from the same generator state). torch is imported inside the draw;
- `variance(params, n_in, n_out)`: Var[W_ij] for the theory (docs/formulas.md 1.4), and `distribution`:
  gaussian, uniform, orthogonal, zeros, or lsuv (its variance is set by the recursion itself);
  `caveat(params, n_in, n_out)`: why the theory cannot follow the draw, or None;
- `worked(fans)`: the app's Explain panel lines, the formula with one layer's numbers filled in;
  `story(fans, sigma_w^2, arch)`: its sentence in `initscope explain`; `variant(spec, prediction)`:
  any further paragraph.
`params` always has the gain resolved: a scheme with gain=auto gets its activation's recommended gain
(`scheme_params`). LSUV's per-layer rescaling needs the data, so it lives in engine/runner.py; its draw
here is its orthogonal start.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

from ..entries import AUTO, Entry, Param, fparam
from ..numbers import fmt_num
from ..numbers import fmt_text as _g
from ..textforms import Call, format_call
from .activations import ACTIVATIONS


def _n(x: float) -> str:
    """A number in a worked formula: 5 significant digits (the app's Explain panel)."""
    return fmt_num(x, 5)


@dataclass(frozen=True)
class Fans:
    """What a scheme's text sees of one layer: its parameters (gain resolved) and fans."""

    p: dict
    n_in: int
    n_out: int
    act: str  # the activation's name
    gain_given: bool  # False when gain=auto took the activation's recommended gain
    text: str = ""  # the scheme's shortest text form, e.g. normal(std=0.01)


# The weight distributions the theory knows (engine/theory/band.py's finite-width band treats each
# differently: uniform entries have excess kurtosis -6/5, orthogonal rows have no length noise, lsuv is
# rescaled on the batch, zeros have no spread). A scheme with another law needs its case there first;
# tests/engine/test_kinds.py fails on a record whose distribution is not one of these.
DISTRIBUTIONS = ("gaussian", "uniform", "orthogonal", "zeros", "lsuv")


def _no_caveat(p, n_in, n_out) -> str | None:
    return None


def _no_variant(spec, pred) -> list[str]:
    return []


@dataclass(frozen=True, kw_only=True)
class InitScheme(Entry):
    """One init scheme: catalog entry + torch draw + variance rule for the theory + Explain text."""

    draw: Callable  # (w, params, generator) -> None, fills w in place
    variance: Callable[[dict, int, int], float]  # Var[W_ij]
    distribution: str  # gaussian | uniform | orthogonal | zeros | lsuv
    worked: Callable[[Fans], list[str]]
    story: Callable[[Fans, float, tuple], str]
    caveat: Callable[[dict, int, int], str | None] = _no_caveat
    variant: Callable = _no_variant


INITS: dict[str, InitScheme] = {}


def register(scheme: InitScheme) -> InitScheme:
    """Add (or replace) a record: the catalog, the torch side and the theory see it at once."""
    INITS[scheme.name] = scheme
    return scheme


def scheme_params(init: Call, act: Call) -> dict:
    """The scheme's parameters with defaults filled in and gain=auto replaced by the activation's gain."""
    p = INITS[init.name].values(init)
    if "gain" in p and p["gain"] is None:
        kind = ACTIVATIONS[act.name]
        p["gain"] = kind.gain(kind.values(act))
    return p


def fans(init: Call, act: Call, n_in: int, n_out: int) -> Fans:
    return Fans(scheme_params(init, act), n_in, n_out, act.name, init.get("gain") is not None,
                format_call(init, INITS[init.name].defaults))


# ---------------------------------------------------------------------------------------------
# torch draws (torch.nn.init's functions run under no_grad themselves)


def _fan(w, mode: str) -> int:
    """fan_in = size(1), fan_out = size(0), as torch.nn.init._calculate_fan_in_and_fan_out for 2-D."""
    return w.shape[1] if mode == "fan_in" else w.shape[0]


def draw_normal(w, p, generator=None) -> None:
    """W ~ N(0, std^2) (torch.nn.init.normal_)."""
    from torch.nn import init as tinit

    tinit.normal_(w, 0.0, float(p["std"]), generator=generator)


def draw_uniform(w, p, generator=None) -> None:
    """W ~ U(-bound, bound), Var = bound^2/3 (torch.nn.init.uniform_)."""
    from torch.nn import init as tinit

    bound = float(p["bound"])
    tinit.uniform_(w, -bound, bound, generator=generator)


def draw_xavier_normal(w, p, generator=None) -> None:
    """W ~ N(0, std^2), std = gain * sqrt(2/(fan_in + fan_out)) (torch.nn.init.xavier_normal_)."""
    from torch.nn import init as tinit

    tinit.xavier_normal_(w, gain=float(p["gain"]), generator=generator)


def draw_xavier_uniform(w, p, generator=None) -> None:
    """W ~ U(-a, a), a = gain * sqrt(6/(fan_in + fan_out)) (torch.nn.init.xavier_uniform_)."""
    from torch.nn import init as tinit

    tinit.xavier_uniform_(w, gain=float(p["gain"]), generator=generator)


def draw_kaiming_normal(w, p, generator=None) -> None:
    """W ~ N(0, std^2), std = gain/sqrt(fan) (torch.nn.init.kaiming_normal_ with the gain given exactly).

    torch computes std = calculate_gain(...)/math.sqrt(fan) and calls normal_(0, std); doing the same
    with an explicit gain gives the same bits whenever the gains agree (relu, leaky_relu, tanh, ...).
    """
    from torch.nn import init as tinit

    tinit.normal_(w, 0.0, float(p["gain"]) / math.sqrt(_fan(w, str(p.get("mode", "fan_in")))), generator=generator)


def draw_kaiming_uniform(w, p, generator=None) -> None:
    """W ~ U(-a, a), a = sqrt(3) * gain/sqrt(fan) (torch.nn.init.kaiming_uniform_, gain given exactly)."""
    from torch.nn import init as tinit

    bound = math.sqrt(3.0) * (float(p["gain"]) / math.sqrt(_fan(w, str(p.get("mode", "fan_in")))))
    tinit.uniform_(w, -bound, bound, generator=generator)


def draw_orthogonal(w, p, generator=None) -> None:
    """W = gain * Q (Saxe et al. 2014; torch.nn.init.orthogonal_): W W^T = gain^2 I (rows <= cols)
    or W^T W = gain^2 I (rows > cols)."""
    from torch.nn import init as tinit

    tinit.orthogonal_(w, gain=float(p.get("gain", 1.0)), generator=generator)


def draw_trunc_normal(w, p, generator=None) -> None:
    """W ~ N(0, std^2) redrawn until inside [a, b]: absolute bounds, no variance correction
    (torch.nn.init.trunc_normal_; std=1 gives an actual std of 0.8796)."""
    from torch.nn import init as tinit

    tinit.trunc_normal_(w, mean=0.0, std=float(p["std"]), a=float(p["a"]), b=float(p["b"]), generator=generator)


def draw_torch_default(w, p, generator=None) -> None:
    """nn.Linear.reset_parameters' weight: kaiming_uniform_(a=sqrt(5)), i.e. W ~ U(-1/sqrt(fan_in),
    1/sqrt(fan_in)), Var = 1/(3 fan_in). The bias half is the torch_default bias record."""
    from torch.nn import init as tinit

    tinit.kaiming_uniform_(w, a=math.sqrt(5), generator=generator)


def draw_zeros(w, p, generator=None) -> None:
    """W = 0 (a degenerate baseline: every unit computes the same thing)."""
    from torch.nn import init as tinit

    tinit.zeros_(w)


# ---------------------------------------------------------------------------------------------
# variance rules, worked lines, sentences


def _gauss_or_uniform(name: str) -> str:
    return "uniform" if name.endswith("uniform") else "gaussian"


def _trunc_moments(p) -> tuple[float, float]:
    from ..theory.meanfield import truncated_normal_moments  # numpy; imported when the theory asks

    return truncated_normal_moments(float(p["std"]), float(p["a"]), float(p["b"]))


def _trunc_variance(p, n_in, n_out) -> float:
    return _trunc_moments(p)[1]


def _trunc_caveat(p, n_in, n_out) -> str | None:
    mean, var = _trunc_moments(p)
    if mean * mean * n_in > 1e-4 * var:
        return (f"trunc_normal(a={float(p['a']):g}, b={float(p['b']):g}) is not symmetric about 0, so the weights "
                f"have mean {mean:.3g}: every unit then shares an offset mean*sum(x), which the zero-mean theory "
                "does not cover")
    return None


def _xavier_worked(f: Fans) -> list[str]:
    gain, fi, fo = float(f.p["gain"]), f.n_in, f.n_out
    s = gain * math.sqrt(2 / (fi + fo))
    return [f"std = gain*sqrt(2/(fan_in+fan_out)) = {_n(gain)}*sqrt(2/({fi}+{fo})) = {_n(s)}"]


def _xavier_uniform_worked(f: Fans) -> list[str]:
    gain, fi, fo = float(f.p["gain"]), f.n_in, f.n_out
    a = gain * math.sqrt(6 / (fi + fo))
    return [f"a = gain*sqrt(6/(fan_in+fan_out)) = {_n(gain)}*sqrt(6/({fi}+{fo})) = {_n(a)}",
            f"std = a/sqrt(3) = {_n(a / math.sqrt(3))}"]


def _xavier_story(name: str):
    def story(f: Fans, sw2: float, arch) -> str:
        return (f"{name} (Glorot & Bengio 2010) draws Var[W] = 2 gain^2/(n_in + n_out), the compromise between "
                f"keeping the forward and the backward variance of a LINEAR layer: sigma_w^2 = {_g(sw2)} here "
                f"({f.n_in}->{f.n_out}). It ignores what the activation does to the second moment.")
    return story


def _kaiming_variance(p, n_in, n_out) -> float:
    gain = float(p["gain"])
    fan = n_in if p.get("mode", "fan_in") == "fan_in" else n_out
    return gain * gain / fan


def _kaiming_worked(uniform: bool):
    def worked(f: Fans) -> list[str]:
        gain, mode = float(f.p["gain"]), str(f.p.get("mode", "fan_in"))
        fan = f.n_in if mode == "fan_in" else f.n_out
        s = gain / math.sqrt(fan)
        lines = [f"gain = {_n(gain)} (given)" if f.gain_given else f"gain = calculate_gain({f.act}) = {_n(gain)}"]
        if uniform:
            lines.append(f"a = gain*sqrt(3/{mode}) = {_n(gain)}*sqrt(3/{fan}) = {_n(gain * math.sqrt(3 / fan))}")
        lines.append(f"std = gain/sqrt({mode}) = {_n(gain)}/sqrt({fan}) = {_n(s)}")
        return lines
    return worked


def _kaiming_story(name: str):
    def story(f: Fans, sw2: float, arch) -> str:
        mode = f.p.get("mode")
        s = (f"{name} (He et al. 2015) draws Var[W] = gain^2/{mode} with gain {_g(float(f.p['gain']))}"
             f"{'' if f.gain_given else ' (the one ' + f.act + ' asks for)'}, so sigma_w^2 = n_in Var[W] = {_g(sw2)}.")
        if mode == "fan_out":
            s += (" fan_out keeps the backward variance instead: the forward second moment then changes by "
                  f"n_out/n_in each layer (overall {_g(arch[1] / arch[-1])} from block 1 to block L).")
        return s
    return story


def _lecun_worked(uniform: bool):
    def worked(f: Fans) -> list[str]:
        gain, fi = float(f.p["gain"]), f.n_in
        lines = []
        if uniform:
            lines.append(f"a = gain*sqrt(3/fan_in) = {_n(gain)}*sqrt(3/{fi}) = {_n(gain * math.sqrt(3 / fi))}")
        lines.append(f"std = gain/sqrt(fan_in) = {_n(gain)}/sqrt({fi}) = {_n(gain / math.sqrt(fi))}")
        return lines
    return worked


def _lecun_story(name: str):
    def story(f: Fans, sw2: float, arch) -> str:
        return (f"{name} (LeCun et al. 1998) draws Var[W] = gain^2/fan_in: sigma_w^2 = {_g(sw2)}, the choice that "
                "keeps a linear layer's second moment (and SELU's fixed point mean 0, variance 1).")
    return story


def _fixed_story(f: Fans, sw2: float, arch) -> str:
    return f"{f.text} fixes Var[W] whatever the width: sigma_w^2 = n_in Var[W] = {_g(sw2)}."


def _torch_default_variant(spec, pred) -> list[str]:
    """The weights' half of nn.Linear's default; the bias floor is the torch_default bias record's."""
    from ..theory.gaussian import activation

    if activation(spec.act).slope == 0.0:  # relu: E[relu(h)^2] = q/2, so E[x^2] shrinks by 1/3 x 1/2 = 1/6
        return ["With relu, sigma_w^2 = 1/3 shrinks the variance by 6 (the std by sqrt(6) = 2.449) per layer"
                + (" until the bias variance takes over." if pred.sigma_b2[0] > 0 else ".")]
    return []


_GAIN = fparam("gain", AUTO, "multiplier on the std; auto = the activation's recommended gain", optional=True,
               positive=True)
_GAIN1 = fparam("gain", 1.0, "multiplier on the std", positive=True)
_MODE = Param("mode", "choice", "fan_in", "fan_in keeps the forward variance, fan_out the backward",
              choices=("fan_in", "fan_out"))

for _scheme in [
    InitScheme(
        name="normal", doc="Gaussian weights with a fixed std",
        params=(fparam("std", 1.0, "standard deviation", positive=True),), formula="W ~ N(0, std^2)",
        draw=draw_normal, distribution="gaussian",
        # x * x, not x**2: inf past 1e154, where ** raises OverflowError
        variance=lambda p, n_in, n_out: float(p["std"]) * float(p["std"]),
        worked=lambda f: [f"std = {_n(float(f.p['std']))}"],
        story=_fixed_story),
    InitScheme(
        name="uniform", doc="uniform weights in a fixed symmetric interval",
        params=(fparam("bound", 1.0, "half-width of the interval", positive=True),),
        formula="W ~ U(-bound, bound), Var = bound^2/3",
        draw=draw_uniform, distribution="uniform",
        variance=lambda p, n_in, n_out: float(p["bound"]) * float(p["bound"]) / 3,
        worked=lambda f: [f"std = bound/sqrt(3) = {_n(float(f.p['bound']))}/sqrt(3) = "
                          f"{_n(float(f.p['bound']) / math.sqrt(3))}"],
        story=_fixed_story),
    InitScheme(
        name="xavier_normal", doc="Glorot & Bengio 2010, normal", params=(_GAIN1,),
        formula="W ~ N(0, gain^2 * 2/(fan_in + fan_out))",
        draw=draw_xavier_normal, distribution="gaussian",
        variance=lambda p, n_in, n_out: 2 * float(p["gain"]) * float(p["gain"]) / (n_in + n_out),
        worked=_xavier_worked, story=_xavier_story("xavier_normal")),
    InitScheme(
        name="xavier_uniform", doc="Glorot & Bengio 2010, uniform ('normalized initialization')", params=(_GAIN1,),
        formula="W ~ U(-a, a), a = gain * sqrt(6/(fan_in + fan_out))",
        draw=draw_xavier_uniform, distribution="uniform",
        variance=lambda p, n_in, n_out: 2 * float(p["gain"]) * float(p["gain"]) / (n_in + n_out),
        worked=_xavier_uniform_worked, story=_xavier_story("xavier_uniform")),
    InitScheme(
        name="kaiming_normal", doc="He et al. 2015, normal", params=(_MODE, _GAIN), formula="W ~ N(0, gain^2/fan)",
        draw=draw_kaiming_normal, distribution="gaussian", variance=_kaiming_variance,
        worked=_kaiming_worked(uniform=False), story=_kaiming_story("kaiming_normal")),
    InitScheme(
        name="kaiming_uniform", doc="He et al. 2015, uniform", params=(_MODE, _GAIN),
        formula="W ~ U(-a, a), a = gain * sqrt(3/fan)",
        draw=draw_kaiming_uniform, distribution="uniform", variance=_kaiming_variance,
        worked=_kaiming_worked(uniform=True), story=_kaiming_story("kaiming_uniform")),
    InitScheme(
        name="lecun_normal", doc="LeCun et al. 1998 (the SELU init)", params=(_GAIN1,),
        formula="W ~ N(0, gain^2/fan_in)",
        draw=draw_kaiming_normal, distribution="gaussian",  # = kaiming_normal_ with nonlinearity='linear' at gain 1
        variance=lambda p, n_in, n_out: float(p["gain"]) * float(p["gain"]) / n_in,
        worked=_lecun_worked(uniform=False), story=_lecun_story("lecun_normal")),
    InitScheme(
        name="lecun_uniform", doc="LeCun et al. 1998, uniform", params=(_GAIN1,),
        formula="W ~ U(-a, a), a = gain * sqrt(3/fan_in)",
        draw=draw_kaiming_uniform, distribution="uniform",
        variance=lambda p, n_in, n_out: float(p["gain"]) * float(p["gain"]) / n_in,
        worked=_lecun_worked(uniform=True), story=_lecun_story("lecun_uniform")),
    InitScheme(
        name="orthogonal", doc="Saxe et al. 2014: orthonormal rows or columns", params=(_GAIN1,),
        formula="W = gain * Q, Q from the QR of a Gaussian matrix (W W^T = gain^2 I or W^T W = gain^2 I)",
        draw=draw_orthogonal, distribution="orthogonal",
        # every row (or column) has length gain: Var = gain^2/max(n_in, n_out), written as before
        variance=lambda p, n_in, n_out: float(p["gain"]) * float(p["gain"]) * min(1.0, n_in / n_out) / n_in,
        worked=lambda f: [f"std of an entry = gain/sqrt(max(fan_in, fan_out)) = {_n(float(f.p['gain']))}/sqrt("
                          f"{max(f.n_in, f.n_out)}) = {_n(float(f.p['gain']) / math.sqrt(max(f.n_in, f.n_out)))}"],
        story=lambda f, sw2, arch: (
            f"orthogonal weights (Saxe et al. 2014) preserve lengths exactly: sigma_w^2 = gain^2 min(1, n_in/n_out) "
            f"= {_g(sw2)}. Means and stds follow the same theory as Gaussian weights; the difference is in "
            "the Jacobian spectrum, and in a smaller finite-width spread.")),
    InitScheme(
        name="trunc_normal", doc="normal redrawn until inside [a, b] (absolute bounds, no variance correction)",
        params=(fparam("std", 1.0, "std before truncation", positive=True), fparam("a", -2.0, "lower bound"),
                fparam("b", 2.0, "upper bound")),
        formula="W ~ N(0, std^2) restricted to [a, b]",
        relation=lambda v: None if v["a"] < v["b"] else (f"a={v['a']:g}, b={v['b']:g}", "a must be less than b"),
        draw=draw_trunc_normal, distribution="gaussian", variance=_trunc_variance, caveat=_trunc_caveat,
        worked=lambda f: [f"std = {_n(float(f.p['std']))} before truncation to [{_n(float(f.p['a']))}, "
                          f"{_n(float(f.p['b']))}]; after: {_n(math.sqrt(_trunc_moments(f.p)[1]))}"],
        story=lambda f, sw2, arch: (
            f"trunc_normal redraws N(0, std^2) samples outside [a, b] (absolute bounds, no variance correction): "
            f"sigma_w^2 = {_g(sw2)} from the truncated variance.")),
    InitScheme(
        name="torch_default", doc="what nn.Linear.reset_parameters does, weight and bias",
        formula="W ~ U(-1/sqrt(fan_in), 1/sqrt(fan_in)) (kaiming_uniform with a=sqrt(5)); "
                "b ~ U(-1/sqrt(fan_in), 1/sqrt(fan_in))",
        draw=draw_torch_default, distribution="uniform", variance=lambda p, n_in, n_out: 1.0 / (3 * n_in),
        worked=lambda f: [f"bound = 1/sqrt(fan_in) = 1/sqrt({f.n_in}) = {_n(1 / math.sqrt(f.n_in))}",
                          f"std = bound/sqrt(3) = {_n(1 / math.sqrt(f.n_in) / math.sqrt(3))}"],
        story=lambda f, sw2, arch: (
            "torch_default is what nn.Linear does on its own: W and b ~ U(-1/sqrt(n_in), 1/sqrt(n_in)), so "
            f"sigma_w^2 = 1/3 and the bias variance is 1/(3 n_in) = {_g(1 / (3 * f.n_in))}. It is not He's init."),
        variant=_torch_default_variant),
    InitScheme(
        name="zeros", doc="all weights zero (a degenerate baseline)", formula="W = 0",
        draw=draw_zeros, distribution="zeros", variance=lambda p, n_in, n_out: 0.0,
        worked=lambda f: ["std = 0: every unit computes the same thing"],
        story=lambda f, sw2, arch: "zeros sets every weight to 0: each pre-activation is just its bias, at every layer."),
    InitScheme(
        name="lsuv", doc="Mishkin & Matas 2016: orthogonal, then rescale each layer on the batch",
        params=(fparam("tol", 0.1, "stop when |std(pre) - target| < tol", positive=True),
                Param("max_iter", "int", 10, "rescaling steps per layer at most", low=1, high=1000),
                fparam("target", 1.0, "wanted std of each pre-activation", positive=True)),
        formula="W = orthogonal; repeat W <- W * target/std(W x) until |std - target| < tol",
        draw=draw_orthogonal, distribution="lsuv",  # the orthogonal start at gain 1; engine/runner.py rescales
        variance=lambda p, n_in, n_out: math.nan,  # set by the recursion: std(pre) = target by definition
        worked=lambda f: [f"start orthogonal, then rescale each layer until std(pre) = {_n(f.p['target'])} +- "
                          f"{_n(f.p['tol'])} (at most {f.p['max_iter']} steps)"],
        story=lambda f, sw2, arch: (
            f"LSUV (Mishkin & Matas 2016) starts orthogonal and rescales each layer on the batch until "
            f"std(pre) = {_g(float(f.p['target']))}: the pre-activation std is the target by definition.")),
]:
    register(_scheme)


__all__ = ["DISTRIBUTIONS", "INITS", "Fans", "InitScheme", "fans", "register", "scheme_params"]
