"""Training results as text: a table, JSON (schema initscope.train/1) and tidy CSV.

JSON: {"schema": "initscope.train/1", "runs": [run, ...], "comparisons": [...]}; one run per variant (a single
`initscope train` has one). A run: name, spec (text forms), device, elapsed_s, classes, split {train, test},
steps (the recorded steps), eval_steps (after how many updates the splits were evaluated), loss {mean, std,
trials} (minibatch loss per recorded step), evals {train_loss, train_acc, test_loss, test_acc: {mean, std,
trials}} per eval step, final {the same four: {mean, std}} after the last step, tensors {name: {stats
{mean, std, rms, min, max, zero_frac, nonfinite_frac: [T][R][L]}, extra {near_zero, fastai_low, saturated:
[T][R][L]} (forward tensors), hist [T][R][L][B], edges [B+1]}}, update_ratio {W, V (with a residual):
[T][R][L], readout: [T][R]} (log10 std(dW)/std(W)), diverged [null | {step, block}] per trial, notes.
comparisons: for every pair of runs, {a, b, metric: "test_acc", difference, spread, exceeds}: difference of
the final means, spread = sd_a + sd_b over seeds, exceeds = |difference| > spread. NaN and inf are null.
"""

from __future__ import annotations

import csv
import io

import numpy as np

from .report import dumps
from .result import STAT_NAMES
from .train import EXTRA_NAMES, TrainResult, compare
from .trainspec import OPTIMIZERS, show

SCHEMA = "initscope.train/1"
EVALS = ("train_loss", "train_acc", "test_loss", "test_acc")


def _ms(a: np.ndarray) -> dict:
    """{mean, std, trials} over axis 0 (trials), NaN-aware."""
    with np.errstate(all="ignore"):
        import warnings

        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            return {"mean": np.nanmean(a, axis=0).tolist(), "std": np.nanstd(a, axis=0).tolist(),
                    "trials": a.tolist()}


def run_dict(name: str, r: TrainResult) -> dict:
    tensors = {}
    for t in r.tensors:
        d = {"stats": {s: r.stats[t][..., i].tolist() for i, s in enumerate(STAT_NAMES)},
             "hist": r.hist[t].tolist(), "edges": r.edges[t].tolist()}
        if t in r.extra:
            d["extra"] = {s: r.extra[t][..., i].tolist() for i, s in enumerate(EXTRA_NAMES)}
        tensors[t] = d
    final = {}
    for k in EVALS:
        m, s = r.headline(k)
        final[k] = {"mean": m, "std": s}
    return {
        "name": name, "spec": r.spec.to_text(), "device": r.device, "elapsed_s": r.elapsed_s,
        "classes": r.classes, "split": {"train": r.split[0], "test": r.split[1]},
        "steps": r.steps.tolist(), "eval_steps": r.eval_steps.tolist(), "loss": _ms(r.loss),
        "evals": {k: _ms(r.evals[k]) for k in EVALS}, "final": final, "tensors": tensors,
        "update_ratio": {k: v.tolist() for k, v in r.update_ratio.items()},
        "diverged": [None if d is None else {"step": d[0], "block": d[1]} for d in r.diverged],
        "notes": list(r.data_notes) + list(r.notes),
    }


def comparisons(named: list[tuple[str, TrainResult]], metric: str = "test_acc") -> list[dict]:
    out = []
    for i in range(len(named)):
        for j in range(i + 1, len(named)):
            d, s, ex = compare(named[i][1], named[j][1], metric)
            out.append({"a": named[i][0], "b": named[j][0], "metric": metric, "difference": d, "spread": s,
                        "exceeds": ex})
    return out


def to_json(named: list[tuple[str, TrainResult]]) -> str:
    return dumps({"schema": SCHEMA, "runs": [run_dict(n, r) for n, r in named], "comparisons": comparisons(named)})


def to_csv(named: list[tuple[str, TrainResult]]) -> str:
    """Tidy rows: run, trial, step, block, quantity, value. step is the recorded step (for evals: the number of
    updates before the evaluation); block is empty for per-run quantities. Quantities: loss, the four evals,
    <tensor>.<stat>, <tensor>.<extra>, update_ratio.W / .V / .readout."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["run", "trial", "step", "block", "quantity", "value"])

    def v(x: float) -> str:
        return "" if not np.isfinite(x) else repr(float(x))

    for name, r in named:
        T, R = r.loss.shape
        L = r.spec.body.depth
        for t in range(T):
            for k in EVALS:
                for e, step in enumerate(r.eval_steps):
                    w.writerow([name, t, int(step), "", k, v(r.evals[k][t, e])])
            for j, step in enumerate(r.steps):
                w.writerow([name, t, int(step), "", "loss", v(r.loss[t, j])])
                w.writerow([name, t, int(step), "", "update_ratio.readout", v(r.update_ratio["readout"][t, j])])
                for layer in range(L):
                    for tn in r.tensors:
                        for i, s in enumerate(STAT_NAMES):
                            w.writerow([name, t, int(step), layer + 1, f"{tn}.{s}", v(r.stats[tn][t, j, layer, i])])
                        if tn in r.extra:
                            for i, s in enumerate(EXTRA_NAMES):
                                w.writerow([name, t, int(step), layer + 1, f"{tn}.{s}",
                                            v(r.extra[tn][t, j, layer, i])])
                    for k in ("W", "V"):
                        if k in r.update_ratio:
                            w.writerow([name, t, int(step), layer + 1, f"update_ratio.{k}",
                                        v(r.update_ratio[k][t, j, layer])])
    return buf.getvalue()


def _pm(m: float, s: float, digits: int = 3) -> str:
    if not np.isfinite(m):
        return "-"
    return f"{m:.{digits}f} +- {s:.{digits}f}"


def to_table(named: list[tuple[str, TrainResult]]) -> str:
    lines = []
    first = named[0][1]
    sp = first.spec
    lines.append(f"{sp.steps} steps of {show(OPTIMIZERS, sp.optimizer)}, minibatch {sp.batch}, data "
                 f"{sp.to_text()['data']} ({first.split[0]} train / {first.split[1]} held out, {first.classes} "
                 f"classes); mean +- sd over {sp.trials} seed(s) from {sp.body.seed}")
    lines.append("")
    head = f"{'run':<16} {'spec':<60} {'train loss':>17} {'test loss':>17} {'test acc':>17} {'diverged':>8}"
    lines.append(head)
    lines.append("-" * len(head))
    for name, r in named:
        t = r.spec.to_text()
        spec = f"{t['init']} {t['act']} {t['arch']}"
        if r.spec.body.has_norm:
            spec += f" {t['norm']}"
        if r.spec.body.has_residual:
            spec += f" {t['residual']}"
        n_div = sum(d is not None for d in r.diverged)
        lines.append(f"{name:<16} {spec[:60]:<60} {_pm(*r.headline('train_loss')):>17} "
                     f"{_pm(*r.headline('test_loss')):>17} {_pm(*r.headline('test_acc')):>17} "
                     f"{n_div:>4}/{len(r.diverged):<3}")
    lines.append("")
    lines.append("held-out accuracy after k updates (mean +- sd):")
    ks = first.eval_steps
    lines.append(f"{'run':<16} " + " ".join(f"{'k=' + str(int(k)):>15}" for k in ks))
    for name, r in named:
        cells = []
        for e in range(len(ks)):
            col = r.evals["test_acc"][:, e]
            col = col[np.isfinite(col)]
            cells.append(f"{_pm(col.mean(), col.std()) if col.size else '-':>15}")
        lines.append(f"{name:<16} " + " ".join(cells))
    lines.append("")
    lines.append("last recorded step, per block (mean over seeds): post mean, post std, |post| <= 0.05, "
                 "post <= 0.05 (fastai), log10 update ratio of W")
    for name, r in named:
        with np.errstate(all="ignore"):
            import warnings

            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)
                pm = np.nanmean(r.stats["post"][:, -1, :, 0], axis=0)
                ps = np.nanmean(r.stats["post"][:, -1, :, 1], axis=0)
                nz = np.nanmean(r.extra["post"][:, -1, :, 0], axis=0)
                lo = np.nanmean(r.extra["post"][:, -1, :, 1], axis=0)
                ur = np.nanmean(r.update_ratio["W"][:, -1, :], axis=0)
        L = len(pm)
        picks = sorted({0, L // 4, L // 2, (3 * L) // 4, L - 1})
        lines.append(f"  {name}: " + "; ".join(
            f"block {i + 1}: {pm[i]:.2f} {ps[i]:.2f} {nz[i]:.2f} {lo[i]:.2f} {ur[i]:.1f}" for i in picks))
    if len(named) > 1:
        lines.append("")
        lines.append("comparison of final held-out accuracy (exceeds: |difference| > sd_a + sd_b, the seed spread)")
        for c in comparisons(named):
            lines.append(f"  {c['a']} - {c['b']}: {c['difference']:+.3f} (spread {c['spread']:.3f}): "
                         f"exceeds {'yes' if c['exceeds'] else 'no'}")
    notes = [n for _, r in named for n in (*r.data_notes, *r.notes)]
    if notes:
        lines.append("")
        lines += notes
    return "\n".join(lines) + "\n"


__all__ = ["SCHEMA", "to_json", "to_csv", "to_table", "run_dict", "comparisons"]
