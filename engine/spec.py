"""RunSpec: one validated, immutable description of a run. Built only through parse_spec.

Every front end (CLI flags, TUI inputs, session files) hands text to parse_spec; spec.to_text()
gives the same text forms back, so parse_spec(**spec.to_text()) == spec (the round trip).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace

from .catalog import resolve, show
from .errors import SpecError
from .textforms import Call, format_arch, parse_arch

DTYPES = ("float32", "float64", "bfloat16", "float16")
# the largest finite value of each dtype (torch.finfo(dtype).max), kept here so that parsing needs no torch
DTYPE_MAX = {"float32": 3.4028234663852886e38, "float64": 1.7976931348623157e308,
             "bfloat16": 3.3895313892515355e38, "float16": 65504.0}
_DEVICE = re.compile(r"auto|cpu|mps|cuda(:\d{1,3})?")

MAX_BATCH = 1 << 24
MAX_TRIALS = 1000

DEFAULTS: dict[str, str] = {
    "arch": "512-512x20",
    "init": "kaiming_normal",
    "act": "relu",
    "bias": "",  # "" = zeros, or torch_default when init is torch_default
    "data": "gaussian",
    "batch": "512",
    "device": "auto",
    "dtype": "float32",
    "seed": "0",
    "trials": "1",
    "grad": "true",
    "norm": "none",
    "residual": "none",
    "pair_corr": "none",  # none = off, or C with -1 < C < 1: P input pairs of correlation C (engine/pairs.py)
}
FIELDS = tuple(DEFAULTS)


@dataclass(frozen=True)
class RunSpec:
    """A validated run: architecture widths n_0..n_L and the resolved init/act/bias/data calls."""

    arch: tuple[int, ...]
    init: Call
    act: Call
    bias: Call
    data: Call
    batch: int
    device: str
    dtype: str
    seed: int
    trials: int
    grad: bool
    norm: Call  # none | batchnorm | layernorm | rmsnorm, after the linear, before the activation
    residual: Call  # none | plain | rezero | fixup
    pair_corr: float | None = None  # None = off; else -1 < C < 1, the correlation of the extra input pairs

    @property
    def has_norm(self) -> bool:
        return self.norm.name != "none"

    @property
    def has_residual(self) -> bool:
        return self.residual.name != "none"

    @property
    def depth(self) -> int:
        """L, the number of linear+activation blocks."""
        return len(self.arch) - 1

    @property
    def fan_in(self) -> tuple[int, ...]:
        return self.arch[:-1]

    @property
    def fan_out(self) -> tuple[int, ...]:
        return self.arch[1:]

    def to_text(self) -> dict[str, str]:
        """The text form of every field, shortest form (defaults of parameters left out)."""
        return {
            "arch": format_arch(self.arch),
            "init": show("init", self.init),
            "act": show("act", self.act),
            "bias": show("bias", self.bias),
            "data": show("data", self.data),
            "batch": str(self.batch),
            "device": self.device,
            "dtype": self.dtype,
            "seed": str(self.seed),
            "trials": str(self.trials),
            "grad": "true" if self.grad else "false",
            "norm": show("norm", self.norm),
            "residual": show("residual", self.residual),
            "pair_corr": "none" if self.pair_corr is None else repr(self.pair_corr),
        }

    def to_json(self) -> dict[str, str | None]:
        """The JSON spec: to_text() with pair_corr null when off (parse_spec(**spec.to_json()) == spec)."""
        texts: dict[str, str | None] = dict(self.to_text())
        if self.pair_corr is None:
            texts["pair_corr"] = None
        return texts

    def to_args(self) -> list[str]:
        """CLI flags that rebuild this spec with `initscope run`."""
        args: list[str] = []
        for key, value in self.to_text().items():
            if key == "grad":
                if not self.grad:
                    args.append("--no-grad")
            elif key in ("norm", "residual", "pair_corr") and value == "none":
                continue
            else:
                args += [f"--{key.replace('_', '-')}", value]
        return args

    def label(self) -> str:
        """A short human name: `kaiming_normal relu 512-512x20`."""
        t = self.to_text()
        return f"{t['init']} {t['act']} {t['arch']}"

    def with_changes(self, **texts: str) -> RunSpec:
        """A new spec with some fields replaced by text forms, validated like parse_spec."""
        merged = self.to_text()
        merged.update(texts)
        return parse_spec(**merged)


def _int_field(field: str, text: object, low: int, high: int) -> int:
    if isinstance(text, bool):
        raise SpecError(field, text, f"expected a whole number from {low} to {high}")
    if isinstance(text, int):
        value = text
    else:
        s = str(text).strip()
        if not re.fullmatch(r"[+-]?\d{1,19}", s):
            raise SpecError(field, text, f"expected a whole number from {low} to {high}")
        value = int(s)
    if not low <= value <= high:
        raise SpecError(field, text, f"expected a whole number from {low} to {high}")
    return value


def _bool_field(field: str, text: object) -> bool:
    if isinstance(text, bool):
        return text
    s = str(text).strip().lower()
    if s in ("true", "on", "yes", "1"):
        return True
    if s in ("false", "off", "no", "0"):
        return False
    raise SpecError(field, text, "expected true or false")


def parse_spec(**texts: object) -> RunSpec:
    """Build a RunSpec from text forms; missing fields take DEFAULTS. Raises SpecError (one sentence)."""
    unknown = set(texts) - set(FIELDS)
    if unknown:
        raise SpecError("spec", sorted(unknown)[0], "known fields are " + ", ".join(FIELDS))
    t = {**DEFAULTS, **{k: v for k, v in texts.items() if v is not None}}
    arch = parse_arch(str(t["arch"]))
    init = resolve("init", _text(t["init"]))
    act = resolve("act", _text(t["act"]))
    bias_text = _text(t["bias"]).strip()
    if not bias_text:
        bias_text = "torch_default" if init.name == "torch_default" else "zeros"
    bias = resolve("bias", bias_text)
    data = resolve("data", _text(t["data"]))
    norm = resolve("norm", _text(t["norm"]))
    residual = resolve("residual", _text(t["residual"]))
    if residual.name != "none":
        _check_square(arch, show("residual", residual))
    device = str(t["device"]).strip().lower()
    if not _DEVICE.fullmatch(device):
        raise SpecError("device", t["device"], "choose auto, cpu, cuda, cuda:N or mps")
    dtype = str(t["dtype"]).strip().lower()
    if dtype not in DTYPES:
        raise SpecError("dtype", t["dtype"], "choose one of " + ", ".join(DTYPES))
    for field, call in (("init", init), ("act", act), ("bias", bias), ("data", data), ("norm", norm),
                        ("residual", residual)):
        _check_fits_dtype(field, call, dtype)
    return RunSpec(
        arch=arch,
        init=init,
        act=act,
        bias=bias,
        data=data,
        batch=_int_field("batch", t["batch"], 1, MAX_BATCH),
        device=device,
        dtype=dtype,
        seed=_int_field("seed", t["seed"], 0, 2**63 - 1),
        trials=_int_field("trials", t["trials"], 1, MAX_TRIALS),
        grad=_bool_field("grad", t["grad"]),
        norm=norm,
        residual=residual,
        pair_corr=_pair_corr_field(t["pair_corr"]),
    )


def _pair_corr_field(text: object) -> float | None:
    """none/off/"" (the pairs off) or a number C with -1 < C < 1 (the correlation of the input pairs)."""
    reason = "expected a correlation strictly between -1 and 1 (e.g. 0.5), or none to turn the pairs off"
    if isinstance(text, bool):
        raise SpecError("pair_corr", text, reason)
    if isinstance(text, (int, float)):
        value = float(text)
    else:
        s = str(text).strip().lower()
        if s in ("", "none", "off"):
            return None
        if not re.fullmatch(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d{1,3})?", s):
            raise SpecError("pair_corr", text, reason)
        value = float(s)
    if not -1.0 < value < 1.0:
        raise SpecError("pair_corr", text, reason)
    return value + 0.0  # -0.0 -> 0.0, one text form


def _check_square(arch: tuple[int, ...], residual: str) -> None:
    """A skip connection adds x^(l-1) to the branch output, so every block must keep its width."""
    for block, (n_in, n_out) in enumerate(zip(arch[:-1], arch[1:], strict=True), start=1):
        if n_in != n_out:
            raise SpecError("residual", residual, f"block {block} maps {n_in} -> {n_out}, and a residual block needs "
                            "equal widths in and out (for example --arch 512-512x20)")


def _check_fits_dtype(field: str, call: Call, dtype: str) -> None:
    """Every number of a call must be a finite value of the run's dtype: torch converts activation, bias,
    data and init parameters to it, and refuses (or overflows) past its largest value."""
    top = DTYPE_MAX[dtype]
    for key, value in call.params:
        if isinstance(value, float) and abs(value) > top:
            raise SpecError(f"{field} {call.name}: parameter {key}", value,
                            f"it must be at most {top:.4g} in size, the largest {dtype} (the run's dtype)")


def _text(value: object) -> str:
    return value if isinstance(value, str) else str(value)


def default_spec() -> RunSpec:
    return parse_spec()


__all__ = ["RunSpec", "parse_spec", "default_spec", "DEFAULTS", "FIELDS", "DTYPES", "replace"]
