"""RunResult: what a run measured, as plain data (numpy arrays and numbers, no tensors).

Layout of the statistics (T = trials, L = blocks, layer l is index l-1):
    stats[tensor]  float64 [T, L, 7]  columns STAT_NAMES, tensor in TENSORS
    weight         float64 [T, L, 2]  actual mean and std of W^l (the first linear of the block)
    hist[tensor]   float64 [T, L, B]  counts on the tensor's bins, edges(tensor) ([B+1], same for every layer)

The tensors of block l (docs/design.md, Notation): pre h = W x^(l-1) + b; normed n = norm(h) (only with a
norm); post a = phi(n) (phi(h) without a norm); out x^l = x^(l-1) + alpha V a (only with a residual;
otherwise x^l = a); grad dLoss/da, grad_pre dLoss/dh, grad_out dLoss/dx^l (only with a residual). stats and
hist have a key only for the tensors that exist in the run: RunResult.tensors names them in TENSORS order.

Histogram edges: hist_edges are the bins of pre (and of every tensor without its own); tensors with their own
bins (normed, and post after a norm, and out: see engine/runner.py) have them in tensor_edges. edges(tensor)
gives the right ones. Headline values are means over trials (RunResult.headline). Statistics of a tensor are
computed over its finite entries; nonfinite_frac says how many entries were not finite.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .spec import RunSpec

STAT_NAMES = ("mean", "std", "rms", "min", "max", "zero_frac", "nonfinite_frac")
TENSORS = ("pre", "normed", "post", "out", "grad", "grad_pre", "grad_out")
FORWARD_TENSORS = ("pre", "normed", "post", "out")
STAT = {name: i for i, name in enumerate(STAT_NAMES)}


def tensors_of(spec: RunSpec) -> tuple[str, ...]:
    """The tensors a run of `spec` measures, in TENSORS order: normed iff it has a norm, out iff it has a
    residual, grad and grad_pre iff gradients were asked for, grad_out iff gradients and a residual."""
    present = {"pre", "post"}
    if spec.has_norm:
        present.add("normed")
    if spec.has_residual:
        present.add("out")
    if spec.grad:
        present |= {"grad", "grad_pre"}
        if spec.has_residual:
            present.add("grad_out")
    return tuple(t for t in TENSORS if t in present)


@dataclass
class RunResult:
    spec: RunSpec
    device: str  # what actually ran, e.g. "cpu" or "cuda:0 (NVIDIA H100 80GB HBM3)"
    dtype: str
    elapsed_s: float
    stats: dict[str, np.ndarray]
    weight: np.ndarray
    hist_edges: np.ndarray
    hist: dict[str, np.ndarray]
    lsuv_iterations: tuple[int, ...] | None = None  # per layer, when init is lsuv
    data_mean: float = 0.0  # measured on the input batch x^0 (pooled)
    data_second_moment: float = 1.0  # mean(x^0 ** 2), what the theory's layer 1 needs
    notes: tuple[str, ...] = ()
    theory: object | None = field(default=None)  # engine.theory's Prediction, attached by the caller
    hist_counted: tuple[int, ...] = ()  # per layer: entries each histogram counted (a row subsample), if known
    data_kernel: object | None = None  # engine.theory.band.InputKernel of fixed rows (file, digits), for the band
    tensor_edges: dict[str, np.ndarray] = field(default_factory=dict)  # tensors whose bins are not hist_edges
    # with spec.pair_corr (docs/pairs.md): per block, the mean over the P input pairs of the cosine similarity
    # c = sum_i a_i b_i / (|a| |b|) of the pair's two rows; keys "pre", "post" (and "out" with a residual), each
    # float64 [T, L], NaN where not finite. corr_input [T]: the same for the input rows x^0 (the realised c^0).
    corr: dict[str, np.ndarray] | None = None
    corr_input: np.ndarray | None = None

    @property
    def tensors(self) -> tuple[str, ...]:
        """The measured tensors, in TENSORS order."""
        return tuple(t for t in TENSORS if t in self.stats)

    @property
    def trials(self) -> int:
        return int(self.stats["pre"].shape[0])

    @property
    def depth(self) -> int:
        return int(self.stats["pre"].shape[1])

    @property
    def has_grad(self) -> bool:
        return "grad" in self.stats

    def edges(self, tensor: str) -> np.ndarray:
        """The histogram bin edges of `tensor` ([B+1])."""
        return self.tensor_edges.get(tensor, self.hist_edges)

    def per_trial(self, tensor: str, stat: str) -> np.ndarray:
        """[T, L] values of one statistic."""
        return self.stats[tensor][:, :, STAT[stat]]

    def headline(self, tensor: str, stat: str) -> np.ndarray:
        """[L] mean over trials of one statistic (NaN where a trial had no finite entries)."""
        return self.per_trial(tensor, stat).mean(axis=0)

    def spread(self, tensor: str, stat: str) -> np.ndarray:
        """[L] std over trials (0 with one trial)."""
        return self.per_trial(tensor, stat).std(axis=0)

    def first_nonfinite_layer(self) -> int | None:
        """1-based index of the first block whose forward signal (pre, normed, post or out) had a non-finite
        entry."""
        bad = np.zeros(self.stats["pre"].shape[:2], dtype=bool)
        for t in FORWARD_TENSORS:
            if t in self.stats:
                bad |= self.per_trial(t, "nonfinite_frac") > 0
        layers = np.flatnonzero(bad.any(axis=0))
        return int(layers[0]) + 1 if layers.size else None
