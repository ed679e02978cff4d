"""What can be named in a spec: init schemes, activations, biases, data sources, norms and residuals.

Torch-free on purpose: the parser, the TUI and the theory import this without loading torch.
Each entry lists its parameters (type, default, allowed range) and one line of description. Init
schemes, activations, biases and data sources are the records of engine/kinds/ (each an Entry with its
torch side and its theory attached); norms and residuals are entries here.
"""

from __future__ import annotations

from .entries import AUTO, Entry, Param, fparam  # noqa: F401 - AUTO, Param: the catalog's public names
from .errors import SpecError
from .kinds.activations import ACTIVATIONS
from .kinds.biases import BIASES
from .kinds.data import DATA
from .kinds.inits import INITS
from .textforms import Call, Value, format_call, parse_call

_f = fparam

# INITS, ACTIVATIONS, BIASES and DATA are the record tables of engine/kinds/ (the same dict objects):
# each record is an Entry with its torch side and its theory attached.

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
    return resolve_in(field, KINDS[field], text_or_call)


def resolve_in(field: str, table: dict[str, Entry], text_or_call: str | Call) -> Call:
    """resolve() against any table of entries (the catalog's kinds, the training optimizers, ...)."""
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
    _check_relation(entry, field, dict(values))
    return Call(entry.name, tuple(values))


def _check_relation(entry: Entry, field: str, v: dict[str, Value]) -> None:
    """The entry's own rule between its parameters (Entry.relation), e.g. trunc_normal's a < b."""
    broken = entry.relation(v)
    if broken is not None:
        value, reason = broken
        raise SpecError(f"{field} {entry.name}", value, reason)


def show(field: str, call: Call) -> str:
    """The shortest text form of a resolved call (parameters at their defaults left out)."""
    return format_call(call, KINDS[field][call.name].defaults)


def activation_gain(act: Call) -> float:
    """The activation's recommended gain, from its record (engine/kinds/activations.py): torch.nn.init's
    calculate_gain where torch has one.

    relu sqrt(2); leaky_relu(a) sqrt(2/(1+a^2)); general_relu(leak) sqrt(2/(1+leak^2)) (sub and maxv
    ignored, as fast.ai does); tanh 5/3; sigmoid 1; selu 3/4 (torch's; see the docs for why LeCun's 1
    is the self-normalising choice); identity 1; gelu, silu, elu(alpha=1), softplus 1/sqrt(E[phi(z)^2]).
    elu with alpha != 1 uses sqrt(2/(1+alpha^2)) as a leaky-relu-like approximation.
    """
    kind = ACTIVATIONS[act.name]
    return kind.gain(kind.values(act))


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
