"""The finite-width band: how far one network's pooled std may sit from the infinite-width curve.

Exact anchor (theory.md section 8, He-Gaussian ReLU, zero bias, one input): with
M_j = (2/n_j) |relu(h^j)|^2,  E[M_d^2]/M_0^2 = prod_j (1 + kappa/n_j),  kappa = Var(phi^2)/E[phi^2]^2 = 5.
For leaky relu (slope a), the same derivation gives kappa = 6 (1 + a^4)/(1 + a^2)^2 - 1 (a = 1: 2,
the chi-square of a linear layer); for orthogonal weights the norm does not fluctuate and kappa drops by 2.

General recursion (our linear-noise extension; it reduces to the product above for relu-like phi):
track R = E[X^2]/E[X]^2 of the pooled second moments, for pre (Q_l) and post (S_l):
    inherited   R_prev(l) = 1 + f_l^2 (R_S(l-1) - 1),        f_l = sigma_w^2 s_{l-1} / q_l
    pre         R_Q(l)    = R_prev(l) (1 + r_Q(l)),           r_Q = rho_w (1/B + (1 - 1/B) c_l^2) / n_l
    post        R_S(l)    = (1 + eta_l^2 (R_prev(l) - 1)) (1 + r_S(l))
                r_S = [kappa_l / B + (1 - 1/B) kappa_pair(c_l)] / n_l - eta_l^2 (2 - rho_w)(1/B + (1 - 1/B) c_l^2) / n_l
    post std    R_V(l)    = (1 + zeta_l^2 (R_prev(l) - 1)) (1 + r_S(l)),  zeta = d log Var[phi] / d log q
with eta = d log E[phi^2] / d log q (1 for relu-like: fluctuations accumulate; < 1 for tanh or sigmoid
near their fixed point: they die out, "self-averaging"), B the batch, c_l the correlation of two inputs'
pre-activations (batch pooling averages the part of the noise the inputs do not share),
kappa_pair(c) = Cov(phi(u)^2, phi(v)^2)/E[phi^2]^2, rho_w = 2 for Gaussian or uniform weights and
2 max(0, 1 - n_out/n_in) for orthogonal ones (a norm-preserving matrix adds no length noise).
The band: std * (1 -/+ sqrt(R - 1)/2), one standard deviation of the std by the delta method.
Approximate beyond the relu anchor (tests/engine/theory/test_agreement.py checks it against the spread
over 8 seeds); LSUV's band is its tolerance, by definition.
"""

from __future__ import annotations

import math

import numpy as np


def relu_moment_ratio(widths, kappa: float = 5.0) -> float:
    """E[M_d^2]/E[M_d]^2 = prod_j (1 + kappa/n_j) (theory.md 8; H1: n=32, d=10 -> 4.2709)."""
    return float(np.prod([1.0 + kappa / n for n in widths]))


def leaky_kappa(a: float) -> float:
    """Var(phi(h)^2)/E[phi(h)^2]^2 for phi = leaky relu with slope a, h ~ N(0, q)."""
    return 6 * (1 + a**4) / (1 + a * a) ** 2 - 1


def band(mf, fan_in, fan_out, batch: int, homogeneous: bool, lsuv_tol: float | None = None
         ) -> tuple[np.ndarray, np.ndarray]:
    """Relative one-sigma spreads of (pre_std, post_std), each [L]; NaN where the recursion has no value.

    mf is meanfield.MeanField; homogeneous: phi is relu-like (eta = 1 exactly when the bias mean is 0);
    lsuv_tol: LSUV's tolerance on std(pre) (the pre band is then +-tol, by construction).
    """
    L = len(fan_out)
    rel_pre = np.full(L, math.nan)
    rel_post = np.full(L, math.nan)
    inv_b = 1.0 / max(1, batch)
    r_s_prev, s_prev = 1.0, mf.s0
    Q, M1, M2, M4, DM1, DM2 = (a.tolist() for a in (mf.q, mf.m1, mf.m2, mf.m4, mf.dm1, mf.dm2))
    SW2, CORR, PAIR4, MU = mf.sw2.tolist(), mf.corr.tolist(), mf.pair4.tolist(), mf.pre_mean.tolist()
    for i in range(L):
        q, m1, m2, m4 = Q[i], M1[i], M2[i], M4[i]
        if not (math.isfinite(q) and math.isfinite(m2)):
            break
        n, kind = fan_out[i], mf.kinds[i]
        f = SW2[i] * s_prev / q if q > 0 else 0.0
        r_prev = 1.0 if kind == "lsuv" else 1.0 + f * f * (r_s_prev - 1.0)
        rho = 2.0 * max(0.0, 1.0 - n / fan_in[i]) if kind == "orthogonal" else 2.0
        c = CORR[i]
        pair_w = inv_b + (1.0 - inv_b) * (c * c if math.isfinite(c) else 1.0)
        var = m2 - m1 * m1
        if homogeneous and MU[i] == 0.0:
            eta = zeta = 1.0  # E[phi^2] and Var[phi] are proportional to q
        elif q > 0 and m2 > 0:
            eta = q * DM2[i] / m2
            zeta = q * (DM2[i] - 2 * m1 * DM1[i]) / var if var > 1e-300 else 0.0
        else:
            eta = zeta = 0.0
        kappa = m4 / (m2 * m2) - 1.0 if m2 > 0 else 0.0
        kappa_pair = PAIR4[i] / (m2 * m2) - 1.0 if m2 > 0 else 0.0
        r_s = (kappa * inv_b + (1.0 - inv_b) * kappa_pair) / n
        r_s = max(0.0, r_s - eta * eta * (2.0 - rho) * pair_w / n)  # orthogonal: no length noise
        if kind == "lsuv":
            rel_pre[i] = (lsuv_tol or 0.0) / math.sqrt(q) if q > 0 else 0.0
        else:
            rel_pre[i] = 0.5 * math.sqrt(max(0.0, r_prev * (1.0 + rho * pair_w / n) - 1.0))
        rel_post[i] = 0.5 * math.sqrt(max(0.0, (1.0 + zeta * zeta * (r_prev - 1.0)) * (1.0 + r_s) - 1.0))
        r_s_prev = (1.0 + eta * eta * (r_prev - 1.0)) * (1.0 + r_s)
        s_prev = m2
    return rel_pre, rel_post
