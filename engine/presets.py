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
    tensor: str | None = None  # the tensor the app shows for it (None: whatever is shown)
    log_y: bool = False  # with `tensor`: the app's log-y

    def specs(self, overrides: dict[str, str] | None = None) -> list[tuple[str, RunSpec]]:
        """Every variant as a RunSpec; `overrides` (text forms, e.g. {"batch": "256"}) apply to all."""
        return [(label, parse_spec(**{**fields, **(overrides or {})})) for label, fields in self.variants]


# Tanh at the edge of chaos (docs/formulas.md 6.1): sigma_b^2 = 0.05 -> critical sigma_w^2 = 1.760955,
# so kaiming gain sqrt(1.760955) = 1.32701 and bias std sqrt(0.05) = 0.223607.
_EDGE = {"arch": "512-512x50", "act": "tanh", "bias": "normal(std=0.223607)", "batch": "1024"}

# Normalization and residual blocks (docs/formulas.md, the norm and residual sections). BatchNorm needs
# width >> batch for its large-batch rate, hence 1024 wide at batch 256; 30 blocks, so E[g^2] grows by
# (pi/(pi-1))^29 = 6.7e4 from block 30 to block 1 (its std by 1.4669^14.5 = 259).
_BN = {"arch": "1024-1024x30", "init": "kaiming_normal", "act": "relu", "norm": "batchnorm", "batch": "256"}
_LN = {"arch": "1024-1024x30", "init": "kaiming_normal", "norm": "layernorm", "batch": "256"}
# He residual MLPs, 50 blocks: p^l = p^(l-1) (1 + alpha^2) for relu with sigma_w^2 = 2, sigma_v^2 = 1, so
# alpha = 1 gives p^50 = 2^50 = 1.1e15 and alpha = 1/sqrt(50) gives (1 + 1/50)^50 = 2.692.
RESIDUAL_DEPTH = 50
_RES = {"arch": f"512-512x{RESIDUAL_DEPTH}", "init": "kaiming_normal", "act": "relu", "batch": "512"}
_ALPHA_SQRT_L = f"{1 / RESIDUAL_DEPTH ** 0.5:.7f}"  # 0.1414214

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
    Preset(
        "batchnorm", "7", "BatchNorm + ReLU, 30 blocks of 1024 at batch 256: perfect forward, exploding backward",
        "forward every unit is normalised: normed mean 0 std 1, post mean 0.399 std 0.584 (relu of N(0,1)) at "
        "every block, whatever the weights (the gain-0.5 run is the same); backward (tensor grad or grad_pre, "
        "log y) E[g^2] grows toward the input by pi/(pi-1) = 1.467 per block (std by 1.211): 6.7e4 from block "
        "30 to block 1 (std 259x), the large-batch limit (width 1024 >> batch 256)",
        (("bn he", dict(_BN)),
         ("bn gain 0.5", {**_BN, "init": "kaiming_normal(gain=0.5)"})),
        tensor="grad", log_y=True,
    ),
    Preset(
        "layernorm", "8", "LayerNorm, 30 blocks of 1024: ReLU flat, tanh growing backward",
        "forward each example is normalised over its features: normed mean 0 std 1, post as relu/tanh of N(0,1) "
        "(relu 0.399/0.584, tanh 0/0.628); backward E[g^2] changes by E[phi'^2]/E[phi^2] per block, whatever "
        "the batch: 1 for relu (grad flat), 1.178 for tanh (std 10.7x from block 30 to block 1)",
        (("ln relu", {**_LN, "act": "relu"}),
         ("ln tanh", {**_LN, "act": "tanh"})),
        tensor="grad", log_y=True,
    ),
    Preset(
        "residual", "9", f"He residual MLPs, {RESIDUAL_DEPTH} blocks: alpha = 1, alpha = 1/sqrt(L), ReZero, Fixup",
        "tensor out (log y): p = E[x^2] follows p^l = p^(l-1) (1 + alpha^2), so alpha = 1 doubles it per block "
        "(2^50 = 1.1e15 at block 50, std 3.4e7) and alpha = 1/sqrt(50) ends at (1 + 1/50)^50 = 2.692 (std "
        "1.641); ReZero (alpha = 0) and Fixup (V = 0) are the identity, std 1 flat; grad_out mirrors out",
        (("alpha=1", {**_RES, "residual": "plain(alpha=1)"}),
         ("alpha=1/sqrt(L)", {**_RES, "residual": f"plain(alpha={_ALPHA_SQRT_L})"}),
         ("rezero", {**_RES, "residual": "rezero"}),
         ("fixup", {**_RES, "residual": "fixup"})),
        tensor="out", log_y=True,
    ),
]}


def get_preset(name: str) -> Preset:
    try:
        return PRESETS[name]
    except KeyError:
        raise SpecError("preset", name, "choose one of " + ", ".join(PRESETS)) from None
