"""The Phase tab's data: a grid of cells over two swept axes, the quantity shown, the theory's lines.

No Textual here (the widget is tui/widgets/phase.py). A PhaseGrid is either

- the theory-only phase diagram of a spec (`theory_grid`): every cell of build_grid(base, [x, y]) predicted
  by engine.theory.phase.predict_cells (no simulation), or
- a sweep (`table_grid`): a SweepTable (engine/sweep), run in the app or loaded from `initscope sweep
  --output`, with its measured values (mean over trials) and its predicted row per cell.

Arrays are [ny, nx]: x is the sweep's first axis (the slowest one, rows of SweepTable.grid), y its second,
drawn upward (tui/heatmap.py).

The default axes (`default_axes`) are the signal-propagation phase plane of Poole et al. 2016 and
Schoenholz et al. 2017: x = the init scheme's scale parameter (gain, the sigma_w of a fan-in scheme; or
std / bound of an absolute scheme, scaled by 1/sqrt(fan_in) so the range covers the same sigma_w), y =
bias.std (sigma_b, the bias drawn N(0, sigma_b^2)), DEFAULT_COUNT values each.

The lines drawn on top come from the theory (the predicted arrays of the grid):
- chi_1 = 1: the order-to-chaos boundary (contour of the chi1 grid at 1);
- xi_c = L / 6: Schoenholz et al.'s trainability bound: a depth-L network trains when L < ~6 xi_c, so the
  cells between the two L/6 contours (around the boundary) are the trainable band at this depth;
- xi_c = L: where correlations survive the whole depth (inside it 1 - c^L has not yet reached its fixed
  point at the last layer).
Contours of xi_c are drawn on 1/xi_c (finite, 0 at criticality where xi_c is infinite).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
from initscope.engine.catalog import resolve
from initscope.engine.errors import SpecError
from initscope.engine.numbers import fmt_num
from initscope.engine.spec import RunSpec
from initscope.engine.sweep.grid import Axis, build_grid, cell_spec, check_axes, parse_vary, value_text
from initscope.engine.textforms import Call

from .heatmap import contour_mask

DEFAULT_COUNT = 50  # 50 x 50 cells: the theory-only diagram
SWEEP_COUNT = 8  # a measured sweep from the tab: 8 x 8 cells over the same ranges
MAX_AXIS = 100  # values per axis in the tab (100 x 100 cells: build_grid alone takes seconds beyond)
# With DEFAULT_COUNT = 50 values: steps of 0.05 and 0.01.
GAIN_RANGE = (0.5, 2.95)  # sigma_w: sigma_w^2 from 0.25 to 8.7 (ReLU's boundary sqrt 2, tanh's ~1 to 1.6)
BIAS_RANGE = (0.0, 0.49)  # sigma_b: sigma_b^2 from 0 to 0.24
GAIN_SCHEMES = ("xavier_normal", "xavier_uniform", "kaiming_normal", "kaiming_uniform", "lecun_normal",
                "lecun_uniform", "orthogonal")
STD_SCHEMES = {"normal": ("std", 1.0), "trunc_normal": ("std", 1.0), "uniform": ("bound", math.sqrt(3.0))}
FALLBACK_INIT = "lecun_normal"  # schemes without a scale (torch_default, zeros, lsuv): W ~ N(0, gain^2/fan_in)


@dataclass(frozen=True)
class Quantity:
    """What the heatmap shows: `metric` (a sweep metric of docs/sweeps.md) through `flip` (1 - v for c_last),
    its label, `center` (a diverging map centred there; None: sequential) and whether a sweep measures it."""

    name: str
    metric: str
    label: str
    center: float | None
    measured: bool
    flip: bool = False


QUANTITIES = (
    Quantity("log_q_ratio", "log_q_ratio", "log10 E[(x^L)^2] / E[(x^0)^2]", 0.0, True),
    Quantity("1 - c_last", "c_last", "1 - c^L (pair correlation at the last layer)", None, True, flip=True),
    Quantity("log_grad_ratio", "log_grad_ratio", "log10 std(g^1) / std(g^L)", 0.0, True),
    Quantity("chi1", "chi1", "chi_1 = sigma_w^2 E[phi'(h)^2] at q*", 1.0, False),
    Quantity("xi_c", "xi_c", "xi_c = -1/ln(chi_1), correlation depth scale (colour saturates at L)", None, False),
)
QUANTITY_NAMES = tuple(q.name for q in QUANTITIES)
PREDICTED_METRICS = ("log_q_ratio", "c_last", "log_grad_ratio", "chi1", "xi_c", "nonfinite_frac")
MEASURED = ("log_q_ratio", "c_last", "log_grad_ratio", "nonfinite_frac")


def quantity(name: str) -> Quantity:
    return QUANTITIES[QUANTITY_NAMES.index(name)]


def _without(call: Call, param: str) -> str:
    """The call's text with one parameter left out (so a grid's base does not depend on the axis's value)."""
    return str(Call(call.name, tuple((k, v) for k, v in call.params if k != param)))


def _count_range(lo: float, hi: float, count: int) -> str:
    return f"{value_text(lo)}:{value_text(hi)}:{count}"


def default_axes(spec: RunSpec, count: int = DEFAULT_COUNT) -> tuple[str, str]:
    """The --vary texts (x, y) of the default phase plane for `spec`: x the init's gain over GAIN_RANGE (std
    or bound schemes: GAIN_RANGE x (1 or sqrt 3) / sqrt(fan_in), the same sigma_w), y bias.std over BIAS_RANGE.
    A scheme without a scale gets FALLBACK_INIT's gain (grid_base says so)."""
    init = resolve("init", spec.to_text()["init"])
    fan = spec.fan_in[1] if len(spec.fan_in) > 1 else spec.fan_in[0]  # a hidden layer's fan-in
    if init.name in STD_SCHEMES:
        x_param, factor = STD_SCHEMES[init.name]
        lo, hi = (float(f"{g * factor / math.sqrt(fan):.3g}") for g in GAIN_RANGE)
    else:
        x_param, (lo, hi) = "gain", GAIN_RANGE
    return f"init.{x_param}={_count_range(lo, hi, count)}", f"bias.std={_count_range(*BIAS_RANGE, count)}"


STAND_INS = {("init", "gain"): FALLBACK_INIT, ("bias", "std"): "normal"}  # a call that has the parameter


def grid_base(spec: RunSpec, axes: Sequence[Axis]) -> tuple[dict[str, str], str]:
    """(base text forms, note) of a grid over `axes` around `spec`: the spec's text forms, where an axis's
    parameter is left out of its field's call (so the base does not depend on the value there); a call that
    lacks the parameter becomes a stand-in that has it (STAND_INS: bias zeros -> normal for bias.std, a
    scheme without a scale -> lecun_normal for init.gain), said in the note."""
    base = dict(spec.to_text())
    notes = []
    for a in axes:
        if a.param is None or a.field not in base:
            continue
        call = resolve(a.field, base[a.field] or "zeros")
        if a.param not in dict(call.params) and (a.field, a.param) in STAND_INS:
            stand_in = STAND_INS[(a.field, a.param)]
            notes.append(f"{a.field} {call.name} has no {a.param}: the grid uses {stand_in}({a.param})")
            call = resolve(a.field, stand_in)
        if a.param in dict(call.params):
            base[a.field] = _without(call, a.param)
    return base, "; ".join(notes)


def parse_axes(x_text: str, y_text: str) -> tuple[Axis, Axis]:
    """The two --vary texts as axes; SpecError (one sentence) when either is bad, both name the same field
    and parameter, or an axis has more than MAX_AXIS values."""
    x, y = parse_vary(x_text), parse_vary(y_text)
    check_axes([x, y])
    for a in (x, y):
        if len(a) > MAX_AXIS:
            raise SpecError(f"--vary {a.name}", f"{len(a)} values", f"the Phase tab draws at most {MAX_AXIS} values "
                            "per axis; use initscope sweep for more")
    return x, y


def coarse(axis: Axis, count: int = SWEEP_COUNT) -> Axis:
    """`count` values over the same range: evenly spaced between the ends for a numeric axis, else every
    k-th value (and the last)."""
    if len(axis) <= count:
        return axis
    v = axis.values
    if all(isinstance(a, (int, float)) and not isinstance(a, bool) for a in v):
        lo, hi = float(v[0]), float(v[-1])
        return Axis(axis.field, axis.param, tuple(float(f"{lo + (hi - lo) * i / (count - 1):.6g}")
                                                  for i in range(count)))
    idx = sorted({round(i * (len(v) - 1) / (count - 1)) for i in range(count)})
    return Axis(axis.field, axis.param, tuple(v[i] for i in idx))


@dataclass
class PhaseGrid:
    """A grid of cells over axes x (columns) and y (rows, upward): predicted [ny, nx] arrays by metric,
    measured ones (None for the theory-only diagram), the base text forms its cells are built from."""

    x: Axis
    y: Axis
    base: dict[str, str]
    predicted: dict[str, np.ndarray]
    measured: dict[str, np.ndarray] | None = None
    depth: int = 0
    title: str = ""
    note: str = ""
    done_cells: frozenset[int] | None = None  # a sweep: the cells with a result (measured or failed)
    failed: dict[int, str] = field(default_factory=dict)  # sweep cell index -> error
    spec_texts: dict[str, str] = field(default_factory=dict)  # cell (0, 0)'s spec, for the header

    @property
    def shape(self) -> tuple[int, int]:
        return len(self.y), len(self.x)

    @property
    def total(self) -> int:
        return len(self.x) * len(self.y)

    @property
    def done(self) -> int | None:
        return None if self.done_cells is None else len(self.done_cells)

    @property
    def is_sweep(self) -> bool:
        return self.measured is not None

    def coords(self, iy: int, ix: int) -> dict[str, object]:
        return {self.x.name: self.x.values[ix], self.y.name: self.y.values[iy]}

    def cell_index(self, iy: int, ix: int) -> int:
        """The sweep's cell number (row-major, x the slowest axis)."""
        return ix * len(self.y) + iy

    def spec(self, iy: int, ix: int) -> RunSpec:
        """The cell's spec (the base with the cell's axis values), validated by the spec parser."""
        return cell_spec(self.base, [self.x, self.y], self.coords(iy, ix))

    def values(self, q: Quantity, source: str) -> np.ndarray:
        """[ny, nx] of quantity `q` from `source` ("measured" or "predicted"; NaN where absent)."""
        table = self.measured if source == "measured" else self.predicted
        v = None if table is None else table.get(q.metric)
        if v is None:
            return np.full(self.shape, np.nan)
        return 1.0 - v if q.flip else v


def _grid_of(flat: np.ndarray, nx: int, ny: int) -> np.ndarray:
    """A row-major [nx * ny] array (x the slowest axis) as [ny, nx]."""
    return np.asarray(flat, dtype=float).reshape(nx, ny).T.copy()


def grid_specs(base: dict[str, str], x: Axis, y: Axis) -> list[RunSpec]:
    """The specs of every cell, row-major (x the slowest axis): the specs build_grid makes, faster.

    When both axes are parameters of two different call fields (init.gain and bias.std), a cell's spec is
    the x-axis spec of its column with the y field's call of its row: each axis value is validated once by
    the spec parser (the two fields are validated independently of each other by parse_spec: the checks
    across fields are the empty bias, which base never has here, and a residual's widths). 2,500 cells
    then cost 100 parses, not 2,500 (~0.6 s on a 2-core machine). Any other pair of axes: build_grid."""
    from dataclasses import replace

    if x.param is None or y.param is None or x.field == y.field or not str(base.get("bias", "")).strip():
        return [c.spec for c in build_grid(base, [x, y])]
    check_axes([x, y])
    col = [cell_spec(base, [x], {x.name: v}) for v in x.values]
    row = [getattr(cell_spec(base, [y], {y.name: v}), y.field) for v in y.values]
    # a combination the parser would refuse is one whose parts it refuses: check one cell the slow way
    cell_spec(base, [x, y], {x.name: x.values[0], y.name: y.values[0]})
    return [replace(s, **{y.field: call}) for s in col for call in row]


def theory_grid(base: dict[str, str], x: Axis, y: Axis, note: str = "") -> PhaseGrid:
    """The theory-only diagram: predict_cells over every cell of the grid (grid_specs)."""
    from initscope.engine.theory.phase import predict_cells

    specs = grid_specs(base, x, y)
    pred = predict_cells(specs, band=False)  # the band columns are not drawn (and cost ~1 s a cell)
    nx, ny = len(x), len(y)
    predicted = {k: _grid_of(pred[k], nx, ny) for k in PREDICTED_METRICS if k in pred}
    first = specs[0]
    return PhaseGrid(x, y, dict(base), predicted, None, first.depth, title="Phase: mean-field theory",
                     note=note, spec_texts=first.to_text())


def table_grid(table, title: str) -> PhaseGrid:
    """A sweep table (engine/sweep SweepTable) as a PhaseGrid; SpecError unless it has exactly two axes."""
    axes = tuple(table.axes)
    if len(axes) != 2:
        raise SpecError("sweep table", f"{len(axes)} axes", "the Phase tab draws a sweep over exactly two axes "
                        "(--vary twice); print others with initscope sweep --show")
    x, y = axes
    measured = {m: np.asarray(table.grid(m, "measured"), dtype=float).T.copy() for m in MEASURED}
    predicted = {m: np.asarray(table.grid(m, "predicted"), dtype=float).T.copy() for m in PREDICTED_METRICS}
    base = dict(table.spec)
    try:
        first = cell_spec(base, [x, y], {x.name: x.values[0], y.name: y.values[0]})
        depth, texts = first.depth, first.to_text()
    except SpecError:
        depth, texts = 0, dict(base)
    return PhaseGrid(x, y, base, predicted, measured, depth, title=title,
                     done_cells=frozenset(table.done_cells()), failed=dict(table.failed()), spec_texts=texts)


def theory_lines(grid: PhaseGrid) -> list[tuple[np.ndarray, str]]:
    """The contour masks drawn on top: chi_1 = 1, xi_c = L/6 and xi_c = L (module docstring), from the
    grid's predicted arrays; a line whose prediction is missing everywhere is left out."""
    out = []
    chi1 = grid.predicted.get("chi1")
    if chi1 is not None and np.isfinite(chi1).any():
        out.append((contour_mask(chi1, 1.0), "chi1 = 1"))
    xi = grid.predicted.get("xi_c")
    L = grid.depth
    if xi is not None and L > 0 and (np.isfinite(xi) | np.isposinf(xi)).any():
        with np.errstate(divide="ignore", invalid="ignore"):
            inv = np.where(np.isposinf(xi), 0.0, 1.0 / xi)
        out.append((contour_mask(inv, 6.0 / L), f"xi_c = L/6 = {fmt_num(L / 6, 3)}"))
        out.append((contour_mask(inv, 1.0 / L), f"xi_c = L = {L}"))
    return out


ROBUST_PERCENTILE = 95.0


def display_values(grid: PhaseGrid, q: Quantity, source: str) -> tuple[np.ndarray, float | None, float | None]:
    """(values to colour, vmin, vmax). xi_c: from 0 to L (infinite at criticality: the top colour). A diverging
    quantity: centre -+ the 95th percentile of |v - centre| over the finite cells, so a corner of extreme
    cells (log_q_ratio of -18 where tanh's signal dies at small gain) does not wash out the rest; cells
    beyond show the end colours and the colour bar's end reads <lo or >hi."""
    v = grid.values(q, source)
    if q.name == "xi_c" and grid.depth > 0:
        return np.where(np.isposinf(v), float(grid.depth), v), 0.0, float(grid.depth)
    finite = v[np.isfinite(v)]
    if q.center is not None and finite.size:
        dev = np.abs(finite - q.center)
        half = float(np.percentile(dev, ROBUST_PERCENTILE))
        if not half > 0:
            half = float(dev.max()) or 1.0
        return v, q.center - half, q.center + half
    if q.flip:  # 1 - c: from 0 (c = 1, the ordered phase's fixed point); rounding can give -1e-7
        return v, 0.0, None
    return v, None, None


def phase_word(chi1: float) -> str:
    """ordered (chi_1 < 1), chaotic (chi_1 > 1), critical (within 1e-3 of 1), or no prediction."""
    if not math.isfinite(chi1):
        return "no prediction"
    if abs(chi1 - 1.0) < 1e-3:
        return "critical (chi1 = 1)"
    return "ordered (chi1 < 1)" if chi1 < 1 else "chaotic (chi1 > 1)"


def cell_text(grid: PhaseGrid, q: Quantity, iy: int, ix: int) -> str:
    """The status line of a cell: its coordinates, the quantity measured and predicted, chi1 and the phase."""
    coords = "  ".join(f"{k} = {value_text(v)}" for k, v in grid.coords(iy, ix).items())
    pred = float(grid.values(q, "predicted")[iy, ix])
    parts = [coords, f"{q.name}: predicted {fmt_num(pred)}"]
    if grid.is_sweep:
        index = grid.cell_index(iy, ix)
        if index in grid.failed:
            parts[-1] += ", failed: " + grid.failed[index][:60]
        elif index not in grid.done_cells:
            parts[-1] = f"{q.name}: not run (the sweep stopped before this cell)"
        elif q.measured:
            meas = float(grid.values(q, "measured")[iy, ix])
            parts[-1] += f", measured {fmt_num(meas)}"
            frac = grid.measured.get("nonfinite_frac")
            if frac is not None and np.isfinite(frac[iy, ix]) and frac[iy, ix] > 0:
                parts[-1] += f" ({fmt_num(100 * float(frac[iy, ix]), 3)}% non-finite)"
        else:
            parts[-1] += " (theory only)"
    chi1 = grid.predicted.get("chi1")
    c = float(chi1[iy, ix]) if chi1 is not None else math.nan
    parts.append(phase_word(c) if q.name == "chi1" else f"chi1 {fmt_num(c)}: {phase_word(c)}")
    xi = grid.predicted.get("xi_c")
    if xi is not None and q.name != "xi_c":
        parts.append(f"xi_c {fmt_num(float(xi[iy, ix]), 3)} (L = {grid.depth})")
    return " | ".join(parts)
