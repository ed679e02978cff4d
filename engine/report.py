"""Views of a RunResult as text: the results JSON (schema initscope.run/2), CSV, and a terminal table.

JSON contract (README, "Results JSON"): top level schema, spec, device, dtype, trials, elapsed_s,
hist_edges, tensor_hist_edges, layers; each layer has layer, fan_in, fan_out, weight {mean, std}, one object
per tensor of engine/result.py TENSORS: pre, normed, post, out, grad, grad_pre, grad_out (each {mean, std,
rms, min, max, zero_frac, nonfinite_frac}; null where the tensor does not exist in the run: normed without a
norm, out and grad_out without a residual, the gradients without gradients) and theory {pre_std, post_mean,
post_std, grad_std, grad_pre_std, normed_mean, normed_std, out_mean, out_std, grad_out_std} (null where no
prediction). Headline values are means over trials; with several trials `per_trial` keeps each trial's
values. Non-finite numbers are written as null, never as NaN/Infinity.

With --pair-corr (engine/pairs.py): each layer's `corr` {pre, post, out}: the mean over the input pairs of
the cosine similarity of the pair's two rows (mean over trials; `out` null without a residual; per_trial keeps
each trial's), the theory keys pair_corr_pre, pair_corr_post, pair_corr_out and the band pair_corr_pre_lo,
pair_corr_pre_hi (null where the theory has none), and the top-level `corr_input` (the measured c^0, mean over
trials) and `corr_input_expected` (what the pairs are made to have: theory.correlation.input_pair_corr). Without the pairs
`corr` and `corr_input` are null.

Schema history: initscope.run/1 had only pre, post, grad, grad_pre and the first five theory keys; /2 adds
the normed, out and grad_out objects, their theory keys and tensor_hist_edges; later keys only added (corr,
corr_input, corr_input_expected, the pair_corr theory keys), so the schema name stays /2.
"""

from __future__ import annotations

import csv
import io
import json
import math

import numpy as np

from .growth import growth_rows
from .numbers import fmt_num, nice_int_ticks
from .result import STAT_NAMES, TENSORS, RunResult
from .signal_range import RULE, range_event
from .theory.correlation import input_pair_corr

SCHEMA = "initscope.run/2"
THEORY_KEYS = ("pre_std", "post_mean", "post_std", "grad_std", "grad_pre_std", "normed_mean", "normed_std",
               "out_mean", "out_std", "grad_out_std", "pair_corr_pre", "pair_corr_post", "pair_corr_out",
               "pair_corr_pre_lo", "pair_corr_pre_hi")
CORR_KEYS = ("pre", "post", "out")  # RunResult.corr keys, in the JSON's per-layer `corr` and the CSV's corr_*


def _num(x: object) -> float | int | None:
    """A JSON-safe number: None for NaN/inf."""
    if x is None:
        return None
    if isinstance(x, (bool, np.bool_)):
        return bool(x)
    if isinstance(x, (int, np.integer)):
        return int(x)
    v = float(x)
    return v if math.isfinite(v) else None


def _clean(obj: object) -> object:
    if isinstance(obj, dict):
        return {str(k): _clean(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_clean(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return [_clean(v) for v in obj.tolist()]
    if isinstance(obj, (float, int, np.floating, np.integer, np.bool_)) and not isinstance(obj, bool):
        return _num(obj)
    return obj


def dumps(obj: object, indent: int | None = 2) -> str:
    """JSON text with every non-finite number written as null."""
    return json.dumps(_clean(obj), indent=indent, allow_nan=False)


def _stats_dict(row: np.ndarray) -> dict[str, float | None]:
    return {name: _num(row[i]) for i, name in enumerate(STAT_NAMES)}


def theory_layer(result: RunResult, index: int) -> dict[str, float | None] | None:
    """The prediction for block index+1, or None when no prediction was attached."""
    pred = result.theory
    if pred is None:
        return None
    out = {}
    for key in THEORY_KEYS:  # a Prediction without an array (an older theory, a fake) gives null
        values = getattr(pred, key, None)
        out[key] = _num(values[index]) if values is not None else None
    band_json = getattr(pred, "band_json", None)
    if callable(band_json):
        out["band"] = band_json(index + 1)
    return out


def _theory_extras(result: RunResult) -> dict:
    pred = result.theory
    if pred is None:
        return {"theory_reason": "no prediction was computed"}
    extras: dict = {}
    diag = getattr(pred, "diagnostics_json", None)
    if callable(diag):
        extras["diagnostics"] = diag()
    reason = getattr(pred, "reason", None)
    if reason:
        extras["theory_reason"] = reason
    return extras


def to_json_dict(result: RunResult) -> dict:
    """The results JSON as a plain dict (numbers may still be NaN; dumps() turns them into null)."""
    spec = result.spec
    tensors = list(result.tensors)
    mean_stats = {t: result.stats[t].mean(axis=0) for t in tensors}
    mean_weight = result.weight.mean(axis=0)
    mean_hist = {t: result.hist[t].mean(axis=0) for t in result.hist}
    layers = []
    for i in range(result.depth):
        layer = {
            "layer": i + 1,
            "fan_in": spec.arch[i],
            "fan_out": spec.arch[i + 1],
            "weight": {"mean": _num(mean_weight[i, 0]), "std": _num(mean_weight[i, 1])},
        }
        for t in TENSORS:
            layer[t] = _stats_dict(mean_stats[t][i]) if t in mean_stats else None
        layer["theory"] = theory_layer(result, i)
        layer["corr"] = _corr_layer(result, i, lambda v: _num(np.mean(v)))
        if result.trials > 1:
            layer["per_trial"] = {
                "weight": [{"mean": _num(w[0]), "std": _num(w[1])} for w in result.weight[:, i]],
                **{t: [_stats_dict(r) for r in result.stats[t][:, i]] for t in tensors},
            }
            if result.corr is not None:
                layer["per_trial"]["corr"] = _corr_layer(result, i, lambda v: [_num(x) for x in v])
        if mean_hist:
            layer["hist"] = {t: mean_hist[t][i] for t in mean_hist}
        layers.append(layer)
    return {
        "schema": SCHEMA,
        "spec": {**spec.to_json(), "args": spec.to_args()},
        "device": result.device,
        "dtype": result.dtype,
        "trials": result.trials,
        "elapsed_s": _num(result.elapsed_s),
        "first_nonfinite_layer": result.first_nonfinite_layer(),
        "lsuv_iterations": list(result.lsuv_iterations) if result.lsuv_iterations is not None else None,
        "data": {"mean": _num(result.data_mean), "second_moment": _num(result.data_second_moment)},
        "notes": list(result.notes),
        "corr_input": None if result.corr_input is None else _num(np.mean(result.corr_input)),
        "corr_input_expected": None if spec.pair_corr is None else _num(input_pair_corr(spec, spec.pair_corr)),
        **_theory_extras(result),
        "hist_edges": result.hist_edges,
        "tensor_hist_edges": {t: result.tensor_edges[t] for t in tensors if t in result.tensor_edges},
        "layers": layers,
    }


def _corr_layer(result: RunResult, index: int, reduce) -> dict | None:
    """The per-layer `corr` object: reduce([T] values) per key of CORR_KEYS (None where absent), or None
    without the pairs."""
    if result.corr is None:
        return None
    return {k: reduce(result.corr[k][:, index]) if k in result.corr else None for k in CORR_KEYS}


def to_json(result: RunResult) -> str:
    return dumps(to_json_dict(result))


def csv_header(result: RunResult) -> list[str]:
    cols = ["run", "layer", "fan_in", "fan_out", "weight_mean", "weight_std"]
    cols += [f"{t}_{s}" for t in TENSORS for s in STAT_NAMES]
    cols += [f"theory_{k}" for k in THEORY_KEYS]
    cols += [f"corr_{k}" for k in CORR_KEYS]
    return cols


def to_csv(named_results: list[tuple[str, RunResult]]) -> str:
    """One row per run and layer (headline values); empty cells where a value is missing or non-finite."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    header_written = False
    for name, result in named_results:
        if not header_written:
            writer.writerow(csv_header(result))
            header_written = True
        for layer in to_json_dict(result)["layers"]:
            row = [name, layer["layer"], layer["fan_in"], layer["fan_out"], layer["weight"]["mean"],
                   layer["weight"]["std"]]
            for t in TENSORS:
                row += [(layer[t] or {}).get(s) for s in STAT_NAMES]
            row += [(layer["theory"] or {}).get(k) for k in THEORY_KEYS]
            row += [(layer["corr"] or {}).get(k) for k in CORR_KEYS]
            writer.writerow(["" if v is None else (repr(v) if isinstance(v, float) else v) for v in row])
    return buf.getvalue()


def _fmt(x: float | None, width: int = 9) -> str:
    """A table cell: 4 significant digits (engine/numbers.py), '-' where there is no value."""
    return f"{fmt_num(x, 4, missing='-'):>{width}}"


def _measured(stats: dict | None, key: str, width: int = 9) -> str:
    """A measured statistic, or 'nan/inf' when some of the tensor's entries at that layer were inf or
    NaN (the statistic of the finite entries alone would look like a healthy number)."""
    if stats is None:
        return f"{'-':>{width}}"
    if (stats.get("nonfinite_frac") or 0) > 0:
        return f"{'nan/inf':>{width}}"
    return _fmt(stats.get(key), width)


def _nonfinite_note(layer: dict, names: dict[str, str]) -> str:
    """'  nan/inf: pre 81%, dL/dh 50%' for the tensors with inf/NaN entries at this layer, else ''."""
    parts = [f"{label} {100 * layer[t]['nonfinite_frac']:.0f}%" for t, label in names.items()
             if layer.get(t) and (layer[t].get("nonfinite_frac") or 0) > 0]
    return "  nan/inf: " + ", ".join(parts) if parts else ""


# the table's optional columns: (tensor, statistic, header, theory key), shown where the tensor exists
_TABLE_EXTRA = {"normed": ("normed", "std", "normed std", "normed_std"),
                "out": ("out", "std", "out std", "out_std"),
                "grad_pre": ("grad_pre", "std", "dL/dh std", "grad_pre_std"),
                "grad_out": ("grad_out", "std", "dL/dx std", "grad_out_std")}
_LABELS = {"pre": "pre", "normed": "normed", "post": "post", "out": "out", "grad": "dL/da", "grad_pre": "dL/dh",
           "grad_out": "dL/dx"}


def to_table(result: RunResult, max_rows: int = 0) -> str:
    """One row per layer: measured next to predicted (mean over trials), then a summary line. Columns: pre
    std, normed std (with a norm), post mean and std, zero%, out std (with a residual), dL/dh std and dL/dx std
    at the block output (with gradients; dL/dx with a residual)."""
    doc = to_json_dict(result)
    spec = result.spec
    text = spec.to_text()
    blocks = "".join(f"  {k}={text[k]}" for k in ("norm", "residual") if getattr(spec, f"has_{k}", False))
    lines = [
        f"initscope  {spec.label()}  bias={text['bias']}  data={text['data']}{blocks}  "
        f"batch={spec.batch}  trials={result.trials}",
        f"device {result.device}  dtype {result.dtype}  {result.elapsed_s:.3f} s",
        "",
    ]
    present = set(result.tensors)
    before = [_TABLE_EXTRA["normed"]] if "normed" in present else []
    after = [_TABLE_EXTRA[t] for t in ("out", "grad_pre", "grad_out") if t in present]
    head = f"{'layer':>5} {'fan':>11} | {'pre std':>9} {'theory':>9} | "
    head += "".join(f"{h:>9} {'theory':>9} | " for _, _, h, _ in before)
    head += f"{'post mean':>9} {'theory':>9} | {'post std':>9} {'theory':>9} | {'zero%':>6}"
    head += "".join(f" | {h:>9} {'theory':>9}" for _, _, h, _ in after)
    pairs = result.corr is not None
    if pairs:
        head += f" | {'c pre':>9} {'theory':>9}"
    lines += [head, "-" * len(head)]
    rows = doc["layers"]
    shown = rows if not max_rows or len(rows) <= max_rows else rows[: max_rows // 2] + [None] + rows[-max_rows // 2:]
    names = {t: _LABELS[t] for t in result.tensors if t != "grad"}
    for layer in shown:
        if layer is None:
            lines.append(f"{'...':>5}")
            continue
        th = layer["theory"] or {}
        pre, post = layer["pre"], layer["post"]
        fan = f"{layer['fan_in']}->{layer['fan_out']}"
        line = f"{layer['layer']:>5} {fan:>11} | {_measured(pre, 'std')} {_fmt(th.get('pre_std'))} | "
        line += "".join(f"{_measured(layer[t], k)} {_fmt(th.get(key))} | " for t, k, _, key in before)
        line += (f"{_measured(post, 'mean')} {_fmt(th.get('post_mean'))} | {_measured(post, 'std')} "
                 f"{_fmt(th.get('post_std'))} | {100 * (post['zero_frac'] or 0):>6.1f}")
        line += "".join(f" | {_measured(layer[t], k)} {_fmt(th.get(key))}" for t, k, _, key in after)
        if pairs:
            line += f" | {_fmt(layer['corr']['pre'])} {_fmt(th.get('pair_corr_pre'))}"
        lines.append(line + _nonfinite_note(layer, names))
    bad = result.first_nonfinite_layer()
    event = range_event(result, "pre")
    if event is not None or bad is not None:
        lines.append("")
    if event is not None and event.how != "nonfinite":
        lines.append(f"The pre std {event.words} first at layer {event.layer} (the range is {RULE}).")
    if bad is not None:
        lines.append(f"The signal went non-finite (inf/nan) first at layer {bad}; nan/inf marks a statistic "
                     "with inf or NaN entries.")
    growth = growth_rows(result, result.theory) if result.depth > 1 else []
    if growth:
        lines += ["", f"growth per block, block 1 to block {result.depth} (second moments):"]
        lines += [f"  {what}: measured {fmt_num(m, 4)}, predicted {fmt_num(p, 4)}" for what, m, p in growth]
    if pairs:
        lines += ["", _corr_line(result, doc)]
    block = (doc.get("diagnostics") or {}).get("block_lines") or []
    if block:
        lines += ["", f"theory: {block[0]}"]
    if result.lsuv_iterations is not None:
        lines += ["", "LSUV iterations per layer: " + " ".join(str(i) for i in result.lsuv_iterations)]
    for note in result.notes:
        lines.append(f"note: {note}")
    if doc.get("theory_reason"):
        lines.append(f"theory: {doc['theory_reason']}")
    return "\n".join(lines) + "\n"


def _corr_line(result: RunResult, doc: dict) -> str:
    """'input pairs: c^0 0.4976 (made to be 0.5); c^L of pre 0.81 (theory 0.8105); xi_c 12.3 layers'."""
    last = doc["layers"][-1]
    xi = getattr(getattr(result.theory, "depth_scales", None), "xi_c", None)  # the theory's depth scale of c
    xi_text = "" if xi is None else (f"; xi_c {'infinite (critical)' if math.isinf(xi) else fmt_num(xi, 4)}"
                                     + (" layers" if math.isfinite(xi) else ""))
    return (f"input pairs: c^0 {fmt_num(doc['corr_input'], 4, missing='-')} (made to be "
            f"{fmt_num(doc['corr_input_expected'], 4, missing='-')}); c^{len(doc['layers'])} of pre "
            f"{fmt_num(last['corr']['pre'], 4, missing='-')} (theory "
            f"{fmt_num((last['theory'] or {}).get('pair_corr_pre'), 4, missing='-')}){xi_text}")


CHART_MARKERS = {"measured": "braille", "theory": "•"}  # a line and dots: told apart without colour


def chart_tensor(result: RunResult) -> str:
    """The tensor whose std tells a run's story: a residual's block output, the gradient under a norm (whose
    forward is flat by construction), else the pre-activations."""
    if "out" in result.stats:
        return "out"
    if result.spec.has_norm and "grad" in result.stats:
        return "grad"
    return "pre"


def std_chart(result: RunResult, width: int = 100, height: int = 20, tensor: str = "pre", color: bool = True) -> str:
    """A plotext chart of std per layer, measured (a line) and predicted (a point per layer), log-scaled
    by hand when the range is wide; whole-layer x ticks; the title names the first layer with inf/NaN
    entries; the key is a line under the chart. Colour (blue measured, red theory) only when `color`."""
    import plotext as plt

    measured = result.headline(tensor, "std")
    theory = getattr(result.theory, f"{tensor}_std", None) if result.theory is not None else None
    series = [("measured", measured, "blue")]
    if theory is not None:
        series.append(("theory", np.asarray(theory, dtype=float), "red"))
    finite = np.concatenate([s[np.isfinite(s) & (s > 0)] for _, s, _ in series])
    log = finite.size > 0 and finite.max() / finite.min() > 100
    plt.clear_figure()
    plt.plotsize(width, height)
    plt.theme("clear")
    xs = np.arange(1, len(measured) + 1)
    for label, ys, shade in series:
        ok = np.isfinite(ys) & ((ys > 0) if log else True)
        if ok.any():
            yv = np.log10(ys[ok]) if log else ys[ok]
            draw = plt.scatter if label == "theory" else plt.plot  # a prediction is a value per layer
            draw(xs[ok].tolist(), yv.tolist(), color=shade, marker=CHART_MARKERS[label])
    if log and finite.size:
        lo, hi = math.floor(np.log10(finite.min())), math.ceil(np.log10(finite.max()))
        hi = max(hi, lo + 1)
        step = max(1, (hi - lo) // 8)
        ticks = list(range(lo, hi + 1, step))
        plt.yticks(ticks, [f"1e{t}" for t in ticks])
    layers = nice_int_ticks(1, len(measured))
    plt.xticks(layers, [str(t) for t in layers])
    if len(measured) > 1:
        plt.xlim(1, len(measured))
    bad = result.first_nonfinite_layer()
    plt.title(f"{tensor} std per layer" + (" (log scale)" if log else "")
              + (f"; nan/inf from layer {bad}" if bad is not None else ""))
    plt.xlabel("layer")
    text = plt.build()
    key = "  ".join(f"{plt.colorize(glyph, shade) if color else glyph} {label}" for label, glyph, shade in
                    (("measured", "──", "blue"), ("theory", "•", "red"))[:len(series)])
    text = text.rstrip("\n") + "\n" + " " * 6 + key + "\n"  # the key under the chart: plotext's covers the data
    return text if color else plt.uncolorize(text)
