"""The presets: every one parses, says what to look for, and the numbers its line quotes are the closed
forms of docs/formulas.md for its own specs (depth, width, batch, alpha), recomputed here."""

from __future__ import annotations

import math

import numpy as np
import pytest
from initscope.engine.errors import SpecError
from initscope.engine.presets import PRESETS, RESIDUAL_DEPTH, get_preset


def fmt_sci(x: float) -> str:
    """1.1e15, 6.7e4: two significant digits, as the look-for lines write large numbers."""
    mantissa, exp = f"{x:.1e}".split("e")
    return f"{mantissa}e{int(exp)}"


def gauss(f) -> float:
    """E[f(z)], z ~ N(0, 1), by 80-point Gauss-Hermite (exact to ~1e-12 for the smooth tanh moments)."""
    z, w = np.polynomial.hermite_e.hermegauss(80)
    return float(w @ f(z) / w.sum())


def test_every_preset_parses_with_a_look_for_line_and_a_unique_key():
    keys = [p.key for p in PRESETS.values()]
    assert len(set(keys)) == len(keys)
    for p in PRESETS.values():
        assert p.look_for and "\n" not in p.look_for
        assert len(p.specs()) == len(p.variants) >= 1
    with pytest.raises(SpecError):
        get_preset("nope")


def test_batchnorm_preset_quotes_the_large_batch_rate_for_its_own_depth():
    (_, he), (_, small) = PRESETS["batchnorm"].specs()
    for spec in (he, small):
        assert spec.norm.name == "batchnorm" and spec.act.name == "relu" and spec.grad
        assert spec.depth >= 30
        assert min(spec.arch) >= 4 * spec.batch  # the large-batch rate needs width >> batch
    assert he.init != small.init  # the second run differs only in the weights' scale
    assert he.with_changes(init=small.to_text()["init"]) == small
    lam = math.pi / (math.pi - 1)  # E[phi'^2]/Var[phi] for relu: (1/2)/(1/2 - 1/(2 pi))
    steps = he.depth - 1  # block L to block 1
    text = PRESETS["batchnorm"].look_for
    assert f"{lam:.3f}" in text and f"{math.sqrt(lam):.3f}" in text  # 1.467, 1.211
    assert fmt_sci(lam**steps) in text and f"std {lam ** (steps / 2):.0f}x" in text  # 6.7e4, 259
    post_mean, post_std = 1 / math.sqrt(2 * math.pi), math.sqrt(0.5 - 1 / (2 * math.pi))  # relu of N(0, 1)
    assert f"post mean {post_mean:.3f} std {post_std:.3f}" in text


def test_layernorm_preset_quotes_the_per_example_factor():
    specs = dict(PRESETS["layernorm"].specs())
    assert {s.act.name for s in specs.values()} == {"relu", "tanh"}
    assert all(s.norm.name == "layernorm" for s in specs.values())
    depth = specs["ln tanh"].depth
    d2 = gauss(lambda z: (1 - np.tanh(z) ** 2) ** 2)  # E[tanh'(z)^2] = 0.46440
    m2 = gauss(lambda z: np.tanh(z) ** 2)  # E[tanh(z)^2] = 0.39429
    text = PRESETS["layernorm"].look_for
    assert f"{d2 / m2:.3f}" in text  # 1.178
    assert f"std {(d2 / m2) ** ((depth - 1) / 2):.1f}x" in text  # 10.7 from block 30 to block 1
    assert f"tanh 0/{math.sqrt(m2):.3f}" in text and "1 for relu" in text  # relu: (1/2)/(1/2) = 1


def test_residual_preset_follows_the_second_moment_recursion():
    specs = dict(PRESETS["residual"].specs())
    assert list(specs) == ["alpha=1", "alpha=1/sqrt(L)", "rezero", "fixup"]
    L = RESIDUAL_DEPTH
    for spec in specs.values():
        assert spec.depth == L and spec.act.name == "relu" and spec.init.name == "kaiming_normal"
    assert specs["alpha=1"].residual.get("alpha") == 1.0
    alpha = specs["alpha=1/sqrt(L)"].residual.get("alpha")
    assert abs(alpha - 1 / math.sqrt(L)) < 1e-7
    # He relu branch: sigma_w^2 = 2, sigma_v^2 = 1, E[relu(sqrt(2 p) z)^2] = p, so
    # p^l = p^(l-1) + alpha^2 p^(l-1) = p^(l-1) (1 + alpha^2), p^0 = 1
    p = {a: 1.0 for a in (1.0, alpha)}
    for _ in range(L):
        for a in p:
            p[a] += a * a * 1.0 * 1.0 * p[a]
    assert math.isclose(p[1.0], 2.0**L, rel_tol=1e-12)
    assert math.isclose(p[alpha], (1 + 1 / L) ** L, rel_tol=1e-6)
    text = PRESETS["residual"].look_for
    assert f"2^{L} = {fmt_sci(p[1.0])}" in text and f"std {fmt_sci(math.sqrt(p[1.0]))}" in text
    assert f"(1 + 1/{L})^{L} = {p[alpha]:.3f}" in text and f"std {math.sqrt(p[alpha]):.3f}" in text
    assert {specs["rezero"].residual.name, specs["fixup"].residual.name} == {"rezero", "fixup"}
