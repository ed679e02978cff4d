"""Labelled data for training (engine/trainspec.py LABELLED_DATA): inputs, integer labels, a seeded split.

- digits(test_frac, split_seed): scikit-learn's 8x8 digits (a base dependency), 1797 x 64, 10 classes.
- teacher(samples, classes, hidden, test_frac, split_seed): x ~ N(0, 1) of the arch's first width;
  y = argmax_c (A tanh(B x))_c with B ~ N(0, 1/n_0) [hidden, n_0] and A ~ N(0, 1/hidden) [classes, hidden],
  all drawn by numpy's default_rng(split_seed): labels any width can learn, with no download.
- file(path, labels, key, normalize, test_frac, split_seed): the inputs are read like `initscope run`'s
  file data (.npy, .npz, .csv, .pt; never unpickled). The labels are the member `labels` of the .npz at
  `path` when there is one, else the file `labels` (.npy, .npz, .csv, .pt). Labels must be one whole number
  0..C-1 per input row (shape [rows] or [rows, 1]); C = max label + 1, at least 2.

The split: a permutation by numpy's default_rng(split_seed), the first round(test_frac * rows) rows held out
(at least one each side), the same for every trial. digits (and file with normalize=true) are standardized
with the training split's global mean and std: x' = (x - m) / s over all training entries.
"""

from __future__ import annotations

import os
import zipfile
from dataclasses import dataclass

import numpy as np

from .data import FILE_SUFFIXES, _as_matrix, _read_file
from .errors import SpecError
from .textforms import Call, format_arch
from .trainspec import LABELLED_DATA, TrainSpec, show


@dataclass(frozen=True)
class LabelledData:
    x_train: np.ndarray  # float64 [n_train, features]
    y_train: np.ndarray  # int64 [n_train]
    x_test: np.ndarray
    y_test: np.ndarray
    classes: int
    notes: tuple[str, ...] = ()


def _err(call: Call, allowed: str, fix: tuple[str, str] | None = None) -> SpecError:
    return SpecError("data", show(LABELLED_DATA, call), allowed, fix)


def _digits() -> tuple[np.ndarray, np.ndarray]:
    try:
        from sklearn.datasets import load_digits
    except ImportError:  # a base dependency; only a broken install lands here
        raise SpecError("data", "digits", "digits needs scikit-learn (pip install scikit-learn)") from None
    d = load_digits()
    return np.asarray(d.data, dtype=np.float64), np.asarray(d.target, dtype=np.int64)


def _teacher(call: Call, width: int) -> tuple[np.ndarray, np.ndarray]:
    p = call.kwargs
    rng = np.random.default_rng(int(p["split_seed"]))
    n, c, hidden = int(p["samples"]), int(p["classes"]), int(p["hidden"])
    x = rng.standard_normal((n, width))
    b = rng.standard_normal((hidden, width)) / np.sqrt(width)
    a = rng.standard_normal((c, hidden)) / np.sqrt(hidden)
    y = np.argmax(np.tanh(x @ b.T) @ a.T, axis=1).astype(np.int64)
    return x, y


def _labels_array(call: Call) -> np.ndarray:
    path = os.path.expanduser(str(call.get("path")))
    name = str(call.get("labels"))
    if path.lower().endswith(".npz") and os.path.isfile(path):
        try:
            with zipfile.ZipFile(path) as z:
                members = {i.filename[:-4] for i in z.infolist() if i.filename.endswith(".npy")}
        except (OSError, zipfile.BadZipFile):
            members = set()
        if name in members:
            return _read_file(Call("file", (("path", path), ("key", name))))
    if os.path.splitext(name)[1].lower() in FILE_SUFFIXES:
        return _read_file(Call("file", (("path", name), ("key", None))))
    raise _err(call, f"labels={name!r} is neither a member of the .npz at path nor a file ending in "
               + ", ".join(FILE_SUFFIXES))


def _inputs_from_file(call: Call) -> np.ndarray:
    path = os.path.expanduser(str(call.get("path")))
    key = call.get("key")
    if key is None and path.lower().endswith(".npz") and os.path.isfile(path):
        try:
            with zipfile.ZipFile(path) as z:
                members = [i.filename[:-4] for i in z.infolist() if i.filename.endswith(".npy")]
        except (OSError, zipfile.BadZipFile):
            members = []
        others = [m for m in members if m != str(call.get("labels"))]
        if others:
            key = others[0]
    return _read_file(Call("file", (("path", path), ("key", key))))


def check_labels(call: Call, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """y as int64 [rows]: one whole number 0..C-1 per row of x, C >= 2; otherwise one sentence."""
    y = np.asarray(y)
    if y.ndim == 2 and y.shape[0] == 1:  # the file reader gives a 1-d array as one row
        y = y[0]
    if y.ndim == 2 and y.shape[1] == 1:
        y = y[:, 0]
    if y.ndim != 1:
        raise _err(call, f"the labels have shape {tuple(y.shape)}; give one label per input row (shape [rows])")
    if y.shape[0] != x.shape[0]:
        raise _err(call, f"there are {y.shape[0]} labels for {x.shape[0]} input rows; give one label per row")
    if not np.all(np.isfinite(y)) or not np.all(np.asarray(y, dtype=np.float64) == np.round(y)):
        raise _err(call, "the labels must be whole numbers (class ids 0, 1, ..., C-1)")
    if y.min() < 0:
        raise _err(call, f"the labels must be class ids 0..C-1, but one is {int(y.min())}")
    y = y.astype(np.int64)
    if int(y.max()) + 1 < 2:
        raise _err(call, "the labels have only one class; training needs at least 2")
    return y


def load_labelled(spec: TrainSpec) -> LabelledData:
    """The split, standardized data of a training spec (checked against its architecture)."""
    call = spec.data
    width = spec.body.arch[0]
    notes: list[str] = []
    standardize = True
    if call.name == "digits":
        x, y = _digits()
    elif call.name == "teacher":
        x, y = _teacher(call, width)
        standardize = False
    elif call.name == "file":
        x = _as_matrix(_inputs_from_file(call), call)
        y = check_labels(call, x, _labels_array(call))
        standardize = bool(call.get("normalize"))
    else:
        raise KeyError(f"labelled data {call.name!r} has no implementation")
    if x.shape[1] != width:
        raise _err(call, f"the architecture starts with {width} but the data has {x.shape[1]} features",
                   fix=("arch", format_arch((x.shape[1], *spec.body.arch[1:]))))
    rows = x.shape[0]
    if rows < 2:
        raise _err(call, f"the data has {rows} row; training needs at least 2 (one to train on, one held out)")
    rng = np.random.default_rng(int(call.get("split_seed")))
    perm = rng.permutation(rows)
    n_test = min(rows - 1, max(1, round(float(call.get("test_frac")) * rows)))
    test, tr = perm[:n_test], perm[n_test:]
    xtr, xte = x[tr], x[test]
    if standardize:
        m, s = xtr.mean(), xtr.std()
        if s > 0 and np.isfinite(s):
            xtr, xte = (xtr - m) / s, (xte - m) / s
        else:
            xtr, xte = xtr - m, xte - m
            notes.append("The training inputs are constant, so standardizing only subtracted their mean.")
    classes = int(y.max()) + 1
    if spec.batch > len(tr):
        raise SpecError("batch", spec.batch, f"the training split has {len(tr)} rows; the minibatch must be at "
                        f"most that")
    return LabelledData(np.ascontiguousarray(xtr), y[tr], np.ascontiguousarray(xte), y[test], classes, tuple(notes))


__all__ = ["LabelledData", "load_labelled", "check_labels"]
