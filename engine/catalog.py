"""What can be named in a spec: init schemes, activations, biases and data sources.

Torch-free on purpose: the parser, the TUI and the theory import this without loading torch.
Each entry lists its parameters (type, default, allowed range) and one line of description; the
implementations live in engine/inits.py, engine/activations.py, engine/bias.py and engine/data.py.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from .errors import SpecError
from .textforms import Call, Value, format_call, format_value, parse_call

AUTO = None  # a parameter default meaning "derived from the rest of the spec" (e.g. kaiming's gain)


@dataclass(frozen=True)
class Param:
    """One parameter of a catalog entry. kind: float, int, bool, choice, str or path."""

    name: str
    kind: str
    default: Value
    doc: str
    low: float | None = None  # inclusive bounds for numbers
    high: float | None = None
    positive: bool = False  # strictly > 0
    choices: tuple[str, ...] = ()
    optional: bool = False  # None is allowed (meaning AUTO / absent)

    def describe(self) -> str:
        if self.kind == "choice":
            what = "|".join(self.choices)
        elif self.kind == "float" and self.positive:
            what = "number > 0"
        elif self.kind in ("float", "int"):
            lo = "" if self.low is None else f"{self.low:g} <= "
            hi = "" if self.high is None else f" <= {self.high:g}"
            what = f"{lo}{'integer' if self.kind == 'int' else 'number'}{hi}"
        elif self.kind == "bool":
            what = "true|false"
        else:
            what = self.kind
        default = "auto" if self.default is None and self.optional else format_value(self.default)
        return f"{self.name}={default} ({what}): {self.doc}"

    def coerce(self, value: Value, field: str, entry: str) -> Value:
        where = f"{field} {entry}: parameter {self.name}"
        if value is None or (isinstance(value, str) and value.lower() == "auto" and self.optional):
            if self.optional:
                return None
            raise SpecError(where, "none", f"it needs a value ({self.describe()})")
        if self.kind in ("float", "int"):
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise SpecError(where, value, f"expected a number ({self.describe()})")
            try:
                number = float(value)
            except OverflowError:  # an int beyond the float range
                number = math.copysign(math.inf, value)
            if not math.isfinite(number):
                raise SpecError(where, number, "expected a finite number, at most 1.8e308 in size")
            if self.kind == "int":
                if not number.is_integer():
                    raise SpecError(where, value, f"expected an integer ({self.describe()})")
                value = int(value)
            else:
                value = number
            if self.positive and value <= 0:
                raise SpecError(where, value, "it must be greater than 0")
            if self.low is not None and value < self.low:
                raise SpecError(where, value, f"it must be at least {self.low:g}")
            if self.high is not None and value > self.high:
                raise SpecError(where, value, f"it must be at most {self.high:g}")
            return value
        if self.kind == "bool":
            if not isinstance(value, bool):
                raise SpecError(where, value, "expected true or false")
            return value
        if self.kind == "choice":
            if str(value) not in self.choices:
                raise SpecError(where, value, "expected one of " + ", ".join(self.choices))
            return str(value)
        text = str(value) if not isinstance(value, float) else format_value(value)
        if not text:
            raise SpecError(where, value, f"expected a {self.kind}")
        return text


@dataclass(frozen=True)
class Entry:
    """A nameable thing: its parameters, a one-line description and its formula (if any)."""

    name: str
    doc: str
    params: tuple[Param, ...] = ()
    formula: str = ""

    @property
    def defaults(self) -> dict[str, Value]:
        return {p.name: p.default for p in self.params}

    def usage(self) -> str:
        if not self.params:
            return self.name
        return f"{self.name}(" + ", ".join(f"{p.name}=" + ("auto" if p.default is None and p.optional
                                                          else format_value(p.default))
                                           for p in self.params) + ")"


def _f(name, default, doc, **kw) -> Param:
    return Param(name, "float", default, doc, **kw)


_GAIN = _f("gain", AUTO, "multiplier on the std; auto = the activation's recommended gain", optional=True,
           positive=True)
_GAIN1 = _f("gain", 1.0, "multiplier on the std", positive=True)
_MODE = Param("mode", "choice", "fan_in", "fan_in keeps the forward variance, fan_out the backward",
              choices=("fan_in", "fan_out"))

INITS: dict[str, Entry] = {e.name: e for e in [
    Entry("normal", "Gaussian weights with a fixed std", (_f("std", 1.0, "standard deviation", positive=True),),
          "W ~ N(0, std^2)"),
    Entry("uniform", "uniform weights in a fixed symmetric interval",
          (_f("bound", 1.0, "half-width of the interval", positive=True),), "W ~ U(-bound, bound), Var = bound^2/3"),
    Entry("xavier_normal", "Glorot & Bengio 2010, normal", (_GAIN1,),
          "W ~ N(0, gain^2 * 2/(fan_in + fan_out))"),
    Entry("xavier_uniform", "Glorot & Bengio 2010, uniform ('normalized initialization')", (_GAIN1,),
          "W ~ U(-a, a), a = gain * sqrt(6/(fan_in + fan_out))"),
    Entry("kaiming_normal", "He et al. 2015, normal", (_MODE, _GAIN), "W ~ N(0, gain^2/fan)"),
    Entry("kaiming_uniform", "He et al. 2015, uniform", (_MODE, _GAIN),
          "W ~ U(-a, a), a = gain * sqrt(3/fan)"),
    Entry("lecun_normal", "LeCun et al. 1998 (the SELU init)", (_GAIN1,), "W ~ N(0, gain^2/fan_in)"),
    Entry("lecun_uniform", "LeCun et al. 1998, uniform", (_GAIN1,), "W ~ U(-a, a), a = gain * sqrt(3/fan_in)"),
    Entry("orthogonal", "Saxe et al. 2014: orthonormal rows or columns", (_GAIN1,),
          "W = gain * Q, Q from the QR of a Gaussian matrix (W W^T = gain^2 I or W^T W = gain^2 I)"),
    Entry("trunc_normal", "normal redrawn until inside [a, b] (absolute bounds, no variance correction)",
          (_f("std", 1.0, "std before truncation", positive=True), _f("a", -2.0, "lower bound"),
           _f("b", 2.0, "upper bound")), "W ~ N(0, std^2) restricted to [a, b]"),
    Entry("torch_default", "what nn.Linear.reset_parameters does, weight and bias", (),
          "W ~ U(-1/sqrt(fan_in), 1/sqrt(fan_in)) (kaiming_uniform with a=sqrt(5)); "
          "b ~ U(-1/sqrt(fan_in), 1/sqrt(fan_in))"),
    Entry("zeros", "all weights zero (a degenerate baseline)", (), "W = 0"),
    Entry("lsuv", "Mishkin & Matas 2016: orthogonal, then rescale each layer on the batch",
          (_f("tol", 0.1, "stop when |std(pre) - target| < tol", positive=True),
           Param("max_iter", "int", 10, "rescaling steps per layer at most", low=1, high=1000),
           _f("target", 1.0, "wanted std of each pre-activation", positive=True)),
          "W = orthogonal; repeat W <- W * target/std(W x) until |std - target| < tol"),
]}

# Gains: torch.nn.init.calculate_gain where it has one. Where it has none (gelu, silu, elu, softplus),
# gain = 1/sqrt(E[phi(z)^2]), z ~ N(0,1): the He argument generalised (it keeps the second moment of
# each layer's input at 1 when pre-activations are standard normal); values by quadrature, checked in
# tests/engine/test_catalog.py.
_SECOND_MOMENT_GAIN = {
    "gelu": 1.5335304411955353,
    "silu": 1.6765324703310909,
    "elu": 1.2451983007007064,  # alpha = 1; other alphas use the leaky-style formula below
    "softplus": 1.0418668355353016,
}

ACTIVATIONS: dict[str, Entry] = {e.name: e for e in [
    Entry("relu", "max(0, x)", (), "relu(x) = max(0, x)"),
    Entry("leaky_relu", "x for x > 0, a*x otherwise",
          (_f("a", 0.01, "negative slope", low=0.0),), "leaky_relu(x) = max(0, x) + a * min(0, x)"),
    Entry("general_relu", "fast.ai's GeneralRelu: leaky relu, shifted down by sub, clamped at maxv",
          (_f("leak", 0.0, "negative slope", low=0.0), _f("sub", 0.0, "subtracted after the relu"),
           _f("maxv", AUTO, "upper clamp (auto = none)", optional=True)),
          "general_relu(x) = min(leaky_relu(x, leak) - sub, maxv)"),
    Entry("tanh", "hyperbolic tangent", (), "tanh(x)"),
    Entry("sigmoid", "logistic function", (), "sigmoid(x) = 1/(1 + exp(-x))"),
    Entry("gelu", "Gaussian error linear unit (exact, erf form)", (), "gelu(x) = x * Phi(x)"),
    Entry("silu", "sigmoid-weighted linear unit (swish)", (), "silu(x) = x * sigmoid(x)"),
    Entry("selu", "Klambauer et al. 2017, self-normalizing", (),
          "selu(x) = lambda * (x if x > 0 else alpha * (exp(x) - 1)), alpha = 1.6733, lambda = 1.0507"),
    Entry("elu", "exponential linear unit", (_f("alpha", 1.0, "negative saturation value", positive=True),),
          "elu(x) = x if x > 0 else alpha * (exp(x) - 1)"),
    Entry("softplus", "smooth relu", (), "softplus(x) = log(1 + exp(x))"),
    Entry("identity", "no activation (a deep linear net)", (), "identity(x) = x"),
]}

BIASES: dict[str, Entry] = {e.name: e for e in [
    Entry("none", "no bias term at all", (), "h = W x"),
    Entry("zeros", "bias present and zero", (), "b = 0"),
    Entry("const", "every bias the same value", (_f("value", 0.0, "the bias value"),), "b = value"),
    Entry("normal", "Gaussian biases", (_f("std", 0.1, "standard deviation", low=0.0),), "b ~ N(0, std^2)"),
    Entry("uniform", "uniform biases", (_f("bound", 0.1, "half-width", low=0.0),), "b ~ U(-bound, bound)"),
    Entry("torch_default", "nn.Linear's default bias", (), "b ~ U(-1/sqrt(fan_in), 1/sqrt(fan_in))"),
]}

DATA: dict[str, Entry] = {e.name: e for e in [
    Entry("gaussian", "i.i.d. Gaussian inputs, batch rows", (_f("mean", 0.0, "mean"),
                                                             _f("std", 1.0, "standard deviation", low=0.0)),
          "x ~ N(mean, std^2)"),
    Entry("uniform", "i.i.d. uniform inputs, batch rows", (_f("low", -1.0, "lower end"), _f("high", 1.0, "upper end")),
          "x ~ U(low, high)"),
    Entry("file", "rows from a .npy, .npz, .csv or saved-tensor (.pt) file, never unpickled",
          (Param("path", "path", "", "the file"), Param("normalize", "bool", False, "scale to mean 0, std 1"),
           Param("key", "str", AUTO, "array name inside a .npz (auto = the first)", optional=True)),
          "x = the first `batch` rows of the file, flattened to [rows, features]"),
    Entry("digits", "scikit-learn's bundled 8x8 digits (1797 x 64; needs scikit-learn)",
          (Param("normalize", "bool", True, "scale to mean 0, std 1"),), "x = the first `batch` digit images"),
]}

_EPS = "added to the variance before the square root"

NORMS: dict[str, Entry] = {e.name: e for e in [
    Entry("none", "no normalization: n = h", (), "n = h"),
    Entry("batchnorm", "per unit over the batch, biased variance (BatchNorm1d in training mode, scale 1, shift 0)",
          (_f("eps", 1e-5, _EPS, positive=True),), "n = (h - mean_batch h)/sqrt(var_batch h + eps)"),
    Entry("layernorm", "per example over the features (LayerNorm, scale 1, shift 0)",
          (_f("eps", 1e-5, _EPS, positive=True),), "n = (h - mean_units h)/sqrt(var_units h + eps)"),
    Entry("rmsnorm", "per example over the features, no centring (RMSNorm, scale 1)",
          (_f("eps", 1e-6, "added to the mean square before the square root", positive=True),),
          "n = h/sqrt(mean_units h^2 + eps)"),
]}

RESIDUALS: dict[str, Entry] = {e.name: e for e in [
    Entry("none", "no skip connection: x^l = phi(norm(h^l))", (), "x^l = phi(norm(W x^(l-1) + b))"),
    Entry("plain", "skip connection around a two-linear branch; V drawn by the scheme at gain 1, no bias",
          (_f("alpha", 1.0, "branch multiplier", low=0.0),),
          "x^l = x^(l-1) + alpha * V phi(norm(W x^(l-1) + b))"),
    Entry("rezero", "Bachlechner et al. 2020: the branch multiplier starts at 0 (the block is the identity)", (),
          "x^l = x^(l-1) + 0 * V phi(norm(W x^(l-1) + b))"),
    Entry("fixup", "Zhang et al. 2019, two layers per branch: W by the scheme times L^(-1/2), V = 0", (),
          "x^l = x^(l-1) + V phi(norm(L^(-1/2) W x^(l-1) + b)), V = 0"),
]}

KINDS: dict[str, dict[str, Entry]] = {"init": INITS, "act": ACTIVATIONS, "bias": BIASES, "data": DATA,
                                      "norm": NORMS, "residual": RESIDUALS}


def resolve(field: str, text_or_call: str | Call) -> Call:
    """Parse and validate against the catalog: known name, known keys, typed values, defaults filled in."""
    table = KINDS[field]
    call = parse_call(text_or_call, field) if isinstance(text_or_call, str) else text_or_call
    entry = table.get(call.name)
    if entry is None:
        raise SpecError(field, call.name, "choose one of " + ", ".join(table))
    known = {p.name: p for p in entry.params}
    given = dict(call.params)
    for key in given:
        if key not in known:
            keys = ", ".join(known) if known else "none (it takes no parameters)"
            raise SpecError(f"{field} {call.name}", key, f"unknown parameter; valid keys: {keys}")
    values = []
    for p in entry.params:
        if p.name in given:
            values.append((p.name, p.coerce(given[p.name], field, call.name)))
        else:
            if p.kind == "path" and p.default == "":
                raise SpecError(f"{field} {call.name}", format_call(call), f"it needs {p.name}=...")
            values.append((p.name, p.default))
    _check_relations(field, entry.name, dict(values))
    return Call(entry.name, tuple(values))


def _check_relations(field: str, name: str, v: dict[str, Value]) -> None:
    if field == "init" and name == "trunc_normal" and not v["a"] < v["b"]:
        raise SpecError("init trunc_normal", f"a={v['a']:g}, b={v['b']:g}", "a must be less than b")
    if field == "data" and name == "uniform" and not v["low"] < v["high"]:
        raise SpecError("data uniform", f"low={v['low']:g}, high={v['high']:g}", "low must be less than high")


def show(field: str, call: Call) -> str:
    """The shortest text form of a resolved call (parameters at their defaults left out)."""
    return format_call(call, KINDS[field][call.name].defaults)


def activation_gain(act: Call) -> float:
    """The activation's recommended gain: torch.nn.init.calculate_gain where torch has one.

    relu sqrt(2); leaky_relu(a) sqrt(2/(1+a^2)); general_relu(leak) sqrt(2/(1+leak^2)) (sub and maxv
    ignored, as fast.ai does); tanh 5/3; sigmoid 1; selu 3/4 (torch's; see the docs for why LeCun's 1
    is the self-normalising choice); identity 1; gelu, silu, elu(alpha=1), softplus 1/sqrt(E[phi(z)^2]).
    elu with alpha != 1 uses sqrt(2/(1+alpha^2)) as a leaky-relu-like approximation.
    """
    name = act.name
    if name == "relu":
        return math.sqrt(2.0)
    if name == "leaky_relu":
        return _leaky_gain(float(act.get("a", 0.01)))
    if name == "general_relu":
        return _leaky_gain(float(act.get("leak", 0.0)))
    if name == "tanh":
        return 5.0 / 3
    if name == "selu":
        return 3.0 / 4
    if name in ("sigmoid", "identity"):
        return 1.0
    if name == "elu" and float(act.get("alpha", 1.0)) != 1.0:
        return _leaky_gain(float(act.get("alpha", 1.0)))
    return _SECOND_MOMENT_GAIN[name]


def _leaky_gain(slope: float) -> float:
    """sqrt(2/(1 + slope^2)), written sqrt(2)/hypot(1, slope) so that a huge slope gives a tiny gain, not an
    OverflowError."""
    return math.sqrt(2.0) / math.hypot(1.0, slope)


def listing() -> str:
    """Every scheme, activation, bias and data source with its parameters: `initscope list`."""
    titles = {"init": "Init schemes (--init)", "act": "Activations (--act)", "bias": "Bias (--bias)",
              "data": "Data (--data)", "norm": "Normalization (--norm)",
              "residual": "Residual (--residual)"}
    lines: list[str] = []
    for kind, table in KINDS.items():
        lines.append(titles[kind])
        for e in table.values():
            lines.append(f"  {e.usage():<44} {e.doc}")
            if e.formula:
                lines.append(f"  {'':<44}   {e.formula}")
        lines.append("")
    return "\n".join(lines).rstrip() + "\n"
