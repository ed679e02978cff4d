"""A fast fake engine for the TUI's tests and benchmarks: no torch, deterministic, He-like curves.

It propagates the infinite-width second moments through the stack (Gauss-Hermite quadrature for any
activation in the catalog), adds finite-width noise per trial from the seed, and builds a RunResult
with the real layout (stats [T, L, 7], hist [T, L, B]). Layers whose scale overflows float32 come out
non-finite, like a real run. Options: `delay` seconds per layer (to test progress and cancel),
`fail` an exception to raise, `elapsed` the reported time (fixed so screenshots are stable).
"""

from __future__ import annotations

import math
import time
from types import SimpleNamespace

import numpy as np
from initscope.engine.catalog import activation_gain
from initscope.engine.errors import Cancelled
from initscope.engine.result import STAT_NAMES, RunResult
from initscope.engine.spec import RunSpec

_Z, _W = np.polynomial.hermite_e.hermegauss(60)
_W = _W / _W.sum()
EDGES = np.linspace(-4.0, 4.0, 41)
F32_MAX = 3.4e38


def _act(spec: RunSpec):
    a = spec.act
    name = a.name
    if name == "relu":
        return lambda x: np.maximum(x, 0.0)
    if name == "leaky_relu":
        s = float(a.get("a", 0.01))
        return lambda x: np.where(x > 0, x, s * x)
    if name == "general_relu":
        leak, sub, maxv = float(a.get("leak", 0.0)), float(a.get("sub", 0.0)), a.get("maxv")
        def f(x):
            y = np.where(x > 0, x, leak * x) - sub
            return np.minimum(y, float(maxv)) if maxv is not None else y
        return f
    if name == "tanh":
        return np.tanh
    if name == "sigmoid":
        return lambda x: 1 / (1 + np.exp(-x))
    if name == "identity":
        return lambda x: x
    if name == "selu":
        return lambda x: 1.0507 * np.where(x > 0, x, 1.6733 * np.expm1(np.minimum(x, 0)))
    if name == "elu":
        al = float(a.get("alpha", 1.0))
        return lambda x: np.where(x > 0, x, al * np.expm1(np.minimum(x, 0)))
    if name == "softplus":
        return lambda x: np.logaddexp(0, x)
    if name == "silu":
        return lambda x: x / (1 + np.exp(-x))
    return lambda x: x * 0.5 * (1 + np.tanh(0.79788456 * (x + 0.044715 * x**3)))  # gelu


def _weight_var(spec: RunSpec, fan_in: int, fan_out: int, q_in: float) -> float:
    i = spec.init
    name = i.name
    if name == "normal":
        return float(i.get("std")) ** 2
    if name == "uniform":
        return float(i.get("bound")) ** 2 / 3
    if name.startswith("xavier"):
        return float(i.get("gain")) ** 2 * 2 / (fan_in + fan_out)
    if name.startswith("kaiming"):
        gain = i.get("gain")
        gain = activation_gain(spec.act) if gain is None else float(gain)
        fan = fan_in if i.get("mode") == "fan_in" else fan_out
        return gain**2 / fan
    if name in ("lecun_normal", "lecun_uniform", "orthogonal"):
        return float(i.get("gain")) ** 2 / fan_in
    if name == "trunc_normal":
        return float(i.get("std")) ** 2
    if name == "torch_default":
        return 1 / (3 * fan_in)
    if name == "zeros":
        return 0.0
    return float(i.get("target", 1.0)) ** 2 / max(fan_in * q_in, 1e-30)  # lsuv


def _bias_var(spec: RunSpec, fan_in: int) -> tuple[float, float]:
    b = spec.bias
    if b.name == "const":
        return float(b.get("value")), 0.0
    if b.name == "normal":
        return 0.0, float(b.get("std")) ** 2
    if b.name == "uniform":
        return 0.0, float(b.get("bound")) ** 2 / 3
    if b.name == "torch_default":
        return 0.0, 1 / (3 * fan_in)
    return 0.0, 0.0


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
        act = _act(spec)
        rng = np.random.default_rng(spec.seed)
        data = spec.data
        m0 = float(data.get("mean", 0.0) or 0.0) if data.name == "gaussian" else 0.0
        s0 = float(data.get("std", 1.0) or 1.0) if data.name == "gaussian" else 1.0
        q = m0**2 + s0**2  # E[x^2] of the layer input
        q_pre = np.zeros(L)
        post_m = np.zeros(L)
        post_q = np.zeros(L)
        dprime = np.zeros(L)
        wvar = np.zeros(L)
        for li in range(L):
            if cancelled is not None and cancelled():
                raise Cancelled("cancelled")
            fi, fo = spec.arch[li], spec.arch[li + 1]
            wv = _weight_var(spec, fi, fo, q)
            bm, bv = _bias_var(spec, fi)
            wvar[li] = wv
            qp = wv * fi * q + bv + bm**2
            q_pre[li] = qp
            s = math.sqrt(qp) if math.isfinite(qp) else math.inf
            if math.isfinite(s) and s < 1e18:
                x = s * _Z + bm
                y = act(x)
                post_m[li] = float(_W @ y)
                post_q[li] = float(_W @ y**2)
                eps = 1e-4 * max(s, 1e-12)
                dprime[li] = float(_W @ ((act(x + eps) - act(x - eps)) / (2 * eps)) ** 2)
            else:
                post_m[li], post_q[li], dprime[li] = math.inf, math.inf, math.inf
            q = post_q[li]
            if progress is not None:
                progress(li + 1, L)
            if self.delay:
                time.sleep(self.delay)
        grad_q = np.zeros(L)
        g = 1.0
        for li in reversed(range(L)):
            grad_q[li] = g
            if li > 0:
                g = g * dprime[li] * wvar[li] * spec.arch[li + 1]
        pre_std = np.sqrt(q_pre)
        post_std = np.sqrt(np.maximum(post_q - post_m**2, 0))
        grad_std = np.sqrt(grad_q)
        grad_pre_std = np.sqrt(grad_q * dprime)
        curves = {"pre": (np.zeros(L), pre_std), "post": (post_m, post_std), "grad": (np.zeros(L), grad_std),
                  "grad_pre": (np.zeros(L), grad_pre_std)}
        if not spec.grad:
            curves = {k: v for k, v in curves.items() if k in ("pre", "post")}
        width = np.array(spec.arch[1:], dtype=float)
        stats: dict[str, np.ndarray] = {}
        hist: dict[str, np.ndarray] = {}
        for name, (mean, std) in curves.items():
            arr = np.zeros((T, L, len(STAT_NAMES)))
            h = np.zeros((T, L, len(EDGES) - 1))
            for t in range(T):
                noise = 1 + rng.standard_normal(L) * np.sqrt(np.arange(1, L + 1) / (width * spec.batch) + 1 / width)
                sd = std * noise
                mu = mean + rng.standard_normal(L) * std / np.sqrt(width * spec.batch)
                bad = ~np.isfinite(sd) | (sd > F32_MAX) | ~np.isfinite(mu)
                arr[t, :, 0] = np.where(bad, np.nan, mu)
                arr[t, :, 1] = np.where(bad, np.nan, sd)
                arr[t, :, 2] = np.where(bad, np.nan, np.sqrt(mu**2 + sd**2))
                arr[t, :, 3] = np.where(bad, np.nan, mu - 3 * sd)
                arr[t, :, 4] = np.where(bad, np.nan, mu + 3 * sd)
                zero = 0.5 if spec.act.name == "relu" and name in ("post", "grad_pre") else 0.0
                arr[t, :, 5] = np.where(bad, 0.0, zero)
                arr[t, :, 6] = np.where(bad, 1.0, 0.0)
                for li in range(L):
                    if not bad[li]:
                        sample = mu[li] + sd[li] * rng.standard_normal(400)
                        h[t, li] = np.histogram(sample, EDGES)[0]
            stats[name] = arr
            hist[name] = h
        w = np.stack([np.zeros(L), np.sqrt(wvar)], axis=1)[None].repeat(T, axis=0)
        band = 2 / np.sqrt(width)
        theory = SimpleNamespace(
            pre_std=pre_std, post_mean=post_m, post_std=post_std,
            grad_std=grad_std if spec.grad else np.full(L, np.nan),
            grad_pre_std=grad_pre_std if spec.grad else np.full(L, np.nan),
            pre_mean=np.zeros(L), pre_std_lo=pre_std * (1 - band), pre_std_hi=pre_std * (1 + band),
            post_std_lo=post_std * (1 - band), post_std_hi=post_std * (1 + band),
            chi1=float(dprime[0] * wvar[0] * spec.arch[1]), reason="", diagnostics=(),
        )
        return RunResult(spec=spec, device=self.device, dtype=spec.dtype, elapsed_s=self.elapsed, stats=stats,
                         weight=w, hist_edges=EDGES.copy(), hist=hist, theory=theory)
