"""The classic experiments, one name (or one keystroke) away.

Each preset is one or more specs in text form: the first is the main one; with several, the TUI
pins them all so they can be compared at a glance, and `initscope run --preset NAME` runs each.
"""

from __future__ import annotations

from dataclasses import dataclass

from .errors import SpecError
from .spec import RunSpec, parse_spec


@dataclass(frozen=True)
class Preset:
    name: str
    key: str  # suggested keystroke in the TUI
    title: str
    look_for: str  # one line: what to look for
    variants: tuple[tuple[str, dict[str, str]], ...]  # (label, text-form fields)

    def specs(self, overrides: dict[str, str] | None = None) -> list[tuple[str, RunSpec]]:
        """Every variant as a RunSpec; `overrides` (text forms, e.g. {"batch": "256"}) apply to all."""
        return [(label, parse_spec(**{**fields, **(overrides or {})})) for label, fields in self.variants]


# Tanh at the edge of chaos (docs/formulas.md 6.1): sigma_b^2 = 0.05 -> critical sigma_w^2 = 1.760955,
# so kaiming gain sqrt(1.760955) = 1.32701 and bias std sqrt(0.05) = 0.223607.
_EDGE = {"arch": "512-512x50", "act": "tanh", "bias": "normal(std=0.223607)", "batch": "1024"}

PRESETS: dict[str, Preset] = {p.name: p for p in [
    Preset(
        "lesson8", "1", "fast.ai Lesson 8: He init on 784-50-10, with relu and with relu - 0.5",
        "post-ReLU mean 0.564 = 1/sqrt(pi), not 0: He keeps E[x^2] of each layer's input (pre std "
        "sqrt(2)); relu-0.5 recentres the mean to 0.064 but lowers the second moment",
        (("he relu", {"arch": "784-50-10", "init": "kaiming_normal", "act": "relu", "batch": "4096"}),
         ("he relu-0.5", {"arch": "784-50-10", "init": "kaiming_normal", "act": "general_relu(sub=0.5)",
                          "batch": "4096"})),
    ),
    Preset(
        "why_sqrt5", "2", "Why sqrt(5): PyTorch's default nn.Linear init against He, ReLU, 10 layers",
        "the default (kaiming_uniform with a=sqrt(5)) has n*Var[W] = 1/3: the std shrinks by sqrt(6) = 2.45 "
        "per layer until the bias floor sqrt(2/(5n)); He keeps it flat",
        (("torch default", {"arch": "512-512x10", "init": "torch_default", "act": "relu"}),
         ("kaiming_uniform", {"arch": "512-512x10", "init": "kaiming_uniform", "act": "relu"})),
    ),
    Preset(
        "glorot_tanh", "3", "Glorot & Bengio 2010: 5 tanh layers of 1000, standard vs normalized init",
        "standard init U(-1/sqrt(n), 1/sqrt(n)) has n*Var[W] = 1/3: activations shrink layer by layer and "
        "back-propagated gradients shrink toward the input; xavier_uniform keeps both near flat",
        (("standard", {"arch": "1000-1000x5", "init": "torch_default", "bias": "zeros", "act": "tanh"}),
         ("normalized", {"arch": "1000-1000x5", "init": "xavier_uniform", "act": "tanh"})),
    ),
    Preset(
        "he30", "4", "He et al. 2015: a 30-layer ReLU net under Xavier and under He",
        "Xavier halves the variance at every ReLU layer: by layer 30 its std is 2^-14.5 = 4e-5 of He's, "
        "which stays at sqrt(2)",
        (("xavier", {"arch": "512-512x30", "init": "xavier_normal", "act": "relu"}),
         ("he", {"arch": "512-512x30", "init": "kaiming_normal", "act": "relu"})),
    ),
    Preset(
        "selu", "5", "Self-normalizing SELU with LeCun normal, 50 layers (and torch's selu gain 3/4)",
        "lecun_normal holds mean 0 and std 1 at every layer (SELU's fixed point); kaiming with torch's "
        "selu gain 3/4 settles at a post std near 0.20 instead",
        (("lecun_normal", {"arch": "512-512x50", "init": "lecun_normal", "act": "selu"}),
         ("kaiming (gain 3/4)", {"arch": "512-512x50", "init": "kaiming_normal", "act": "selu"})),
    ),
    Preset(
        "edge_of_chaos", "6", "tanh at the edge of chaos: sigma_b^2 = 0.05, sigma_w^2 = 1.761 (chi_1 = 1)",
        "at the critical gain the pre std settles at sqrt(q*) = 0.755 and gradients neither vanish nor "
        "explode; gain 1 is ordered (gradients vanish), gain 2 chaotic (gradients grow)",
        (("critical", {**_EDGE, "init": "kaiming_normal(gain=1.32701)"}),
         ("ordered", {**_EDGE, "init": "kaiming_normal(gain=1)"}),
         ("chaotic", {**_EDGE, "init": "kaiming_normal(gain=2)"})),
    ),
]}


def get_preset(name: str) -> Preset:
    try:
        return PRESETS[name]
    except KeyError:
        raise SpecError("preset", name, "choose one of " + ", ".join(PRESETS)) from None
