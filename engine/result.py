"""RunResult: what a run measured, as plain data (numpy arrays and numbers, no tensors).

Layout of the statistics (T = trials, L = blocks, layer l is index l-1):
    stats[tensor]  float64 [T, L, 7]  columns STAT_NAMES, tensor in TENSORS
                   ("grad" and "grad_pre" are absent when the spec has grad=False)
    weight         float64 [T, L, 2]  actual mean and std of W^l
    hist[tensor]   float64 [T, L, B]  counts on the fixed bins hist_edges ([B+1], same for every layer)
Headline values are means over trials (RunResult.headline). Statistics of a tensor are computed over
its finite entries; nonfinite_frac says how many entries were not finite.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .spec import RunSpec

STAT_NAMES = ("mean", "std", "rms", "min", "max", "zero_frac", "nonfinite_frac")
TENSORS = ("pre", "post", "grad", "grad_pre")
STAT = {name: i for i, name in enumerate(STAT_NAMES)}


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

    @property
    def trials(self) -> int:
        return int(self.stats["pre"].shape[0])

    @property
    def depth(self) -> int:
        return int(self.stats["pre"].shape[1])

    @property
    def has_grad(self) -> bool:
        return "grad" in self.stats

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
        """1-based index of the first block whose pre or post activations had a non-finite entry."""
        bad = (self.per_trial("pre", "nonfinite_frac") > 0) | (self.per_trial("post", "nonfinite_frac") > 0)
        layers = np.flatnonzero(bad.any(axis=0))
        return int(layers[0]) + 1 if layers.size else None
