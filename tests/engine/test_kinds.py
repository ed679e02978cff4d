"""The records of engine/kinds/: every init scheme, activation, bias and data source is complete and its
parts agree with each other (the torch draw with the variance rule, the torch function with the theory
shape, the flags with what the function does), and a new record alone reaches the catalog, the torch
side, the theory, Explain and a run."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from initscope.engine import activations, inits, run
from initscope.engine.bias import make_bias
from initscope.engine.catalog import ACTIVATIONS, BIASES, DATA, INITS, KINDS, activation_gain, listing, resolve
from initscope.engine.device import estimate_bytes
from initscope.engine.entries import Entry
from initscope.engine.kinds import activations as act_kinds
from initscope.engine.kinds import inits as init_kinds
from initscope.engine.kinds.activations import ActivationKind, PiecewiseLinear, Smooth
from initscope.engine.kinds.biases import BiasKind
from initscope.engine.kinds.data import DataKind
from initscope.engine.kinds.inits import DISTRIBUTIONS, InitScheme, fans
from initscope.engine.spec import parse_spec
from initscope.engine.theory import explain, predict
from initscope.engine.theory.gaussian import activation
from initscope.tui.widgets.explain_panel import activation_lines, init_formula_lines
from scipy import integrate, stats

FAN_IN, FAN_OUT = 300, 200
N = FAN_IN * FAN_OUT


def gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


# ---- the tables are the records --------------------------------------------------------------------------
@pytest.mark.parametrize("table, record", [(INITS, InitScheme), (ACTIVATIONS, ActivationKind), (BIASES, BiasKind),
                                           (DATA, DataKind)])
def test_catalog_tables_hold_the_records(table, record):
    assert table and all(isinstance(r, record) and isinstance(r, Entry) and r.name == name
                         for name, r in table.items())
    assert all(r.doc and r.formula for r in table.values())


def test_kinds_covers_every_field():
    assert KINDS["init"] is INITS and KINDS["act"] is ACTIVATIONS and KINDS["bias"] is BIASES and KINDS["data"] is DATA


# ---- init schemes: the draw and the variance rule agree -------------------------------------------------
SCHEMES = [(name, "relu") for name in INITS] + [("kaiming_normal", "tanh"), ("kaiming_uniform(mode=fan_out)", "selu"),
                                               ("orthogonal(gain=2)", "relu"), ("trunc_normal(std=0.5)", "relu")]


@pytest.mark.parametrize("init_text, act_text", SCHEMES)
def test_draw_has_the_variance_the_theory_uses(init_text, act_text):
    init, act = resolve("init", init_text), resolve("act", act_text)
    scheme = INITS[init.name]
    assert scheme.distribution in DISTRIBUTIONS
    p = init_kinds.scheme_params(init, act)
    var = scheme.variance(p, FAN_IN, FAN_OUT)
    w = torch.empty(FAN_OUT, FAN_IN, dtype=torch.float64)
    inits.init_weight(w, init, act, gen(1))
    if scheme.distribution == "lsuv":  # set by the recursion; the draw is the orthogonal start at gain 1
        assert math.isnan(var)
        assert torch.allclose(w @ w.T, torch.eye(FAN_OUT, dtype=torch.float64), atol=1e-12)
        return
    assert math.isfinite(var) and var >= 0
    m2 = float((w * w).mean())
    if var == 0:
        assert m2 == 0
        return
    # E[w^2] over N entries estimates Var (zero-mean schemes) with relative standard error
    # sqrt((kurtosis - 1)/N) <= sqrt(2/N) (Gaussian kurtosis 3; uniform 1.8, truncated normal less than 3,
    # orthogonal: exact, every row has length gain); 6 standard errors
    assert m2 == pytest.approx(var, rel=6 * math.sqrt(2 / N))
    assert scheme.caveat(p, FAN_IN, FAN_OUT) is None  # the default parameters are all predictable


@pytest.mark.parametrize("name", list(INITS))
def test_scheme_text_is_complete(name):
    spec = parse_spec(arch=f"{FAN_IN}-{FAN_OUT}", init=name)
    f = fans(spec.init, spec.act, FAN_IN, FAN_OUT)
    scheme = INITS[name]
    lines = scheme.worked(f)
    assert lines and all(isinstance(line, str) and line for line in lines)
    sentence = scheme.story(f, 1.2345, spec.arch)
    assert isinstance(sentence, str) and len(sentence) > 20


def test_trunc_normal_caveat_names_the_offset():
    p = INITS["trunc_normal"].values(resolve("init", "trunc_normal(a=0, b=2)"))
    assert "not symmetric" in INITS["trunc_normal"].caveat(p, FAN_IN, FAN_OUT)


# ---- activations: torch and theory describe the same function -------------------------------------------
CASES = list(ACTIVATIONS) + ["leaky_relu(a=0.2)", "general_relu(leak=0.1, sub=0.4, maxv=6)", "general_relu(maxv=2)",
                             "elu(alpha=0.5)"]
# an offset keeps the grid off the breakpoints (0, and general_relu's kink at maxv + sub), where a
# one-sided derivative is a convention
X = torch.linspace(-8, 8, 2001, dtype=torch.float64) + 1e-3 * math.sqrt(2)


@pytest.mark.parametrize("text", CASES)
def test_torch_function_matches_the_theory_shape(text):
    call = resolve("act", text)
    x = X.clone().requires_grad_(True)
    y = activations.get(call).fn(x)
    (dy,) = torch.autograd.grad(y.sum(), x)
    phi, dphi = activation(call)(X.numpy())
    # float64 on both sides; the numpy gelu uses a tabulated normal CDF (absolute error 1e-10, times |x| <= 8)
    np.testing.assert_allclose(y.detach().numpy(), phi, rtol=1e-9, atol=1e-8)
    np.testing.assert_allclose(dy.numpy(), dphi, rtol=1e-9, atol=1e-8)


@pytest.mark.parametrize("text", CASES)
def test_flags_say_what_the_function_does(text):
    call = resolve("act", text)
    kind = ACTIVATIONS[call.name]
    p = kind.values(call)
    a = activations.get(call)
    y = a.fn(X)
    assert kind.monotone == bool((torch.diff(y) >= 0).all())
    shape = kind.shape(p)
    assert kind.piecewise_linear == isinstance(shape, PiecewiseLinear)
    assert isinstance(shape, (PiecewiseLinear, act_kinds.EluLike, Smooth))
    if kind.piecewise_linear:  # a scalar gives the same bits as inside a big tensor
        assert all(torch.equal(a.fn(X[i:i + 1]), y[i:i + 1]) for i in range(0, X.numel(), 97))
    assert kind.post_from_pre in ("", "relu", "identity") and a.post_from_pre == kind.post_from_pre
    if kind.post_from_pre == "relu":
        assert torch.equal(y, torch.clamp(X, min=0))
    if kind.post_from_pre == "identity":
        assert torch.equal(y, X)
    assert torch.equal(a.fn_(X.clone()), y)
    gain = kind.gain(p)
    assert math.isfinite(gain) and gain > 0 and gain == activation_gain(call)
    assert kind.story and kind.story.format(name=call.name, gain="1")
    assert isinstance(kind.variant, type(test_flags_say_what_the_function_does))


@pytest.mark.parametrize("text", CASES)
def test_autograd_saves_counts_the_tensors_a_block_keeps(text):
    """The block keeps phi's output (the next matmul saves it) and whatever else phi's backward saves."""
    call = resolve("act", text)
    h = torch.randn(64, 32, requires_grad=True) * 1.0  # a non-leaf, as the matmul's output is
    saved = []

    def pack(t):
        saved.append(t)
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        y = activations.get(call).fn(h)
    kept = {t.untyped_storage().data_ptr() for t in saved if t.numel() == y.numel()}
    kept.add(y.untyped_storage().data_ptr())
    kind = ACTIVATIONS[call.name]
    assert kind.autograd_saves(kind.values(call)) == len(kept)


# ---- biases: the draw has the moments and the kurtosis the theory uses ------------------------------------
@pytest.mark.parametrize("text", ["none", "zeros", "const(value=0.3)", "normal(std=0.2)", "uniform(bound=0.5)",
                                  "torch_default"])
def test_bias_draw_has_the_theory_moments(text):
    call = resolve("bias", text)
    kind = BIASES[call.name]
    assert set(BIASES) >= {call.name}
    mean, var = kind.moments(kind.values(call), FAN_IN)
    n = 200_000
    b = make_bias(call, FAN_IN, n, device=torch.device("cpu"), dtype=torch.float64, generator=gen(2))
    if not kind.present:
        assert b is None and (mean, var) == (0.0, 0.0)
        return
    assert math.isfinite(mean) and var >= 0
    if var == 0:
        assert torch.all(b == mean)
        return
    # sample mean: standard error sqrt(var/n); sample E[(b - mean)^2]: relative error sqrt((kurt + 2 - 1)/n)
    # (kurtosis = Var(b^2)/Var^2 = E[b^4]/Var^2 - 1 for zero-mean b); fourth-moment ratio: its own sample,
    # relative error below 10/sqrt(n) for these light-tailed laws; 6 standard errors
    assert abs(float(b.mean()) - mean) < 6 * math.sqrt(var / n)
    c = b - mean
    assert float((c * c).mean()) == pytest.approx(var, rel=6 * math.sqrt((kind.kurtosis + 1) / n))
    c2 = c * c
    assert float(c2.var()) / var**2 == pytest.approx(kind.kurtosis, rel=60 / math.sqrt(n))


def test_every_bias_and_data_record_is_complete():
    for name, kind in BIASES.items():
        assert kind.kurtosis > 0 and callable(kind.draw) and callable(kind.moments), name
        assert kind.present == (name != "none")
    for name, kind in DATA.items():
        m = kind.iid_moments(kind.defaults)
        assert m is None or (len(m) == 3 and all(math.isfinite(v) for v in m)), name


@pytest.mark.parametrize("text, dist", [("gaussian(mean=0.5, std=2)", stats.norm(0.5, 2)),
                                        ("uniform(low=-1, high=3)", stats.uniform(-1, 4))])
def test_data_moments_are_the_law_s(text, dist):
    call = resolve("data", text)
    m, s2, s4 = DATA[call.name].iid_moments(call.kwargs)
    assert (m, s2, s4) == pytest.approx((dist.moment(1), dist.moment(2), dist.moment(4)), rel=1e-12)


# ---- a new record alone reaches the catalog, torch, the theory, Explain and a run --------------------------
def _hardtanh_torch(p):
    bound = float(p["bound"])
    return (lambda h: torch.clamp(h, -bound, bound)), (lambda h: h.clamp_(-bound, bound))


HARDTANH = ActivationKind(
    name="test_hardtanh", doc="clamp to [-bound, bound] (a record registered by a test)",
    params=(act_kinds.fparam("bound", 1.0, "clamp", positive=True),), formula="max(-bound, min(bound, x))",
    torch=_hardtanh_torch, gain=lambda p: 1.0,
    shape=lambda p: PiecewiseLinear(((-math.inf, -float(p["bound"]), 0.0, -float(p["bound"])),
                                     (-float(p["bound"]), float(p["bound"]), 1.0, 0.0),
                                     (float(p["bound"]), math.inf, 0.0, float(p["bound"])))),
    monotone=True, piecewise_linear=True, autograd_saves=lambda p: 2, post_from_pre="",
    story=" {name} is the identity inside [-bound, bound] and flat outside.")


def _draw_geometric(w, p, generator=None):
    n_out, n_in = w.shape
    torch.nn.init.normal_(w, 0.0, float(p["gain"]) / (n_in * n_out) ** 0.25, generator=generator)


GEOMETRIC = InitScheme(
    name="test_geometric", doc="Var[W] = gain^2/sqrt(fan_in fan_out) (a record registered by a test)",
    params=(init_kinds.fparam("gain", 1.0, "multiplier on the std", positive=True),),
    formula="W ~ N(0, gain^2/sqrt(fan_in fan_out))", draw=_draw_geometric, distribution="gaussian",
    variance=lambda p, n_in, n_out: float(p["gain"]) ** 2 / math.sqrt(n_in * n_out),
    worked=lambda f: [f"std = gain/(fan_in fan_out)^(1/4) = {float(f.p['gain']) / (f.n_in * f.n_out) ** 0.25:.5g}"],
    story=lambda f, sw2, arch: f"test_geometric draws Var[W] = gain^2/sqrt(n_in n_out): sigma_w^2 = {sw2:.4g}.")


@pytest.fixture
def new_records():
    act_kinds.register(HARDTANH)
    init_kinds.register(GEOMETRIC)
    activation.cache_clear()
    yield
    del act_kinds.ACTIVATIONS[HARDTANH.name], init_kinds.INITS[GEOMETRIC.name]
    activation.cache_clear()


def _clamped_moments(q: float, bound: float = 1.0) -> tuple[float, float]:
    """E[clamp(h)], E[clamp(h)^2] for h ~ N(0, q), by quadrature."""
    pdf = stats.norm(0, math.sqrt(q)).pdf
    clamp = lambda h: max(-bound, min(bound, h))  # noqa: E731
    m1 = sum(integrate.quad(lambda h: clamp(h) * pdf(h), a, b)[0] for a, b in ((-np.inf, 0), (0, np.inf)))
    m2 = sum(integrate.quad(lambda h: clamp(h) ** 2 * pdf(h), a, b, epsabs=1e-13)[0]
             for a, b in ((-np.inf, -bound), (-bound, bound), (bound, np.inf)))
    return m1, m2


def test_a_new_activation_and_scheme_need_only_their_records(new_records):
    assert "test_hardtanh(bound=1)" in listing() and "test_geometric(gain=1)" in listing()
    spec = parse_spec(arch="256-128-128", init="test_geometric(gain=1.5)", act="test_hardtanh", batch="512",
                      trials="2", seed="3")
    # torch
    a = activations.get(spec.act)
    assert torch.equal(a.fn(torch.tensor([-3.0, 0.5, 2.0])), torch.tensor([-1.0, 0.5, 1.0]))
    # theory: block 1 has q = n_in Var[W] E[x^2] = 256 * 2.25/sqrt(256 * 128) * 1 (N(0,1) input, zero bias)
    p = predict(spec)
    q1 = 256 * 2.25 / math.sqrt(256 * 128)
    m1, m2 = _clamped_moments(q1)
    assert p.pre_std[0] == pytest.approx(math.sqrt(q1), rel=1e-12)
    assert p.post_mean[0] == pytest.approx(m1, abs=1e-9)
    assert p.post_std[0] == pytest.approx(math.sqrt(m2 - m1 * m1), rel=1e-7)  # exact segments against quadrature
    q2 = 128 * 2.25 / math.sqrt(128 * 128) * m2
    assert p.pre_std[1] == pytest.approx(math.sqrt(q2), rel=1e-7)
    # Explain, the app's panel and the memory estimate
    text = explain(spec, p).to_text()
    assert "test_geometric draws Var[W]" in text and "test_hardtanh is the identity inside" in text
    assert any("std = gain/(fan_in fan_out)^(1/4)" in line for line in init_formula_lines(spec))
    assert "test_hardtanh: clamp to [-bound, bound] (a record registered by a test)" in activation_lines(spec)
    # autograd_saves 2 (its input and its output) against relu's 1: one more [batch, width] float32 per block
    extra = estimate_bytes(spec) - estimate_bytes(spec.with_changes(act="relu"))
    assert extra == 4 * 512 * (128 + 128)
    # a run: the measured pre std of every block within 6 of the band's one-sigma half-widths of the theory
    r = run(spec)
    for layer in range(spec.depth):
        measured = float(r.per_trial("pre", "std")[:, layer].mean())
        half = (p.pre_std_hi[layer] - p.pre_std[layer]) / math.sqrt(r.trials)  # mean of 2 trials
        assert abs(measured - p.pre_std[layer]) < 6 * half, (layer, measured, p.pre_std[layer], half)
