"""Recommended gains: torch.nn.init.calculate_gain where torch has one, 1/sqrt(E[phi(z)^2]) otherwise."""

import math

import numpy as np
import pytest
import torch
from initscope.engine.catalog import activation_gain, listing, resolve
from scipy import integrate, special, stats


@pytest.mark.parametrize(
    "act, torch_args",
    [("relu", ("relu",)), ("tanh", ("tanh",)), ("sigmoid", ("sigmoid",)), ("selu", ("selu",)),
     ("identity", ("linear",)), ("leaky_relu", ("leaky_relu", 0.01)), ("leaky_relu(a=0.2)", ("leaky_relu", 0.2)),
     ("leaky_relu(a=10)", ("leaky_relu", 10)), ("general_relu(leak=0.1, sub=0.4)", ("leaky_relu", 0.1))],
)
def test_gain_matches_torch_calculate_gain(act, torch_args):
    assert activation_gain(resolve("act", act)) == pytest.approx(torch.nn.init.calculate_gain(*torch_args), rel=1e-15)


def _second_moment(f):
    pdf = stats.norm.pdf
    return sum(integrate.quad(lambda z: f(z) ** 2 * pdf(z), a, b, epsabs=1e-14, epsrel=1e-13)[0]
               for a, b in ((-np.inf, 0), (0, np.inf)))


@pytest.mark.parametrize(
    "act, phi",
    [("gelu", lambda z: z * 0.5 * (1 + special.erf(z / math.sqrt(2)))),
     ("silu", lambda z: z * special.expit(z)),
     ("elu", lambda z: z if z > 0 else math.expm1(z)),
     ("softplus", lambda z: np.logaddexp(0, z))],
)
def test_gain_without_torch_value_keeps_the_second_moment(act, phi):
    assert activation_gain(resolve("act", act)) == pytest.approx(1 / math.sqrt(_second_moment(phi)), rel=1e-9)


def test_listing_names_every_entry_with_parameters():
    text = listing()
    for fragment in ("kaiming_normal(mode=fan_in, gain=auto)", "general_relu(leak=0, sub=0, maxv=auto)",
                     "file(path=", "digits(normalize=true)", "lsuv(tol=0.1, max_iter=10, target=1)"):
        assert fragment in text
