"""One record per nameable init scheme, activation and bias: everything initscope knows about a name.

A record is a catalog `Entry` (name, doc, parameters, formula: what `initscope list` shows and the parser
checks) extended with what the torch side and the theory need of it:

- `inits.py`: `InitScheme` - its torch draw, its variance rule Var[W_ij](params, n_in, n_out), the kind of
  distribution (gaussian, uniform, orthogonal, zeros, lsuv), any reason the theory cannot follow it, the
  worked formula lines of the app's Explain panel and its sentence in `initscope explain`;
- `activations.py`: `ActivationKind` - its torch function (out-of-place and in-place), recommended gain,
  theory shape (piecewise-linear segments, elu-like or smooth with its piecewise-linear asymptote), flags
  (monotone, bit-exact piecewise-linear, autograd's saved tensors, the post statistics that follow from
  the pre ones) and its sentences in `initscope explain`;
- `biases.py`: `BiasKind` - its torch draw, mean, variance and kurtosis.

These modules never import torch at import time (each torch function imports it when called), so the
parser, the app and engine/theory can read every record without loading it. engine/catalog.py, the torch
modules (engine/inits.py, engine/activations.py, engine/bias.py) and the theory look names up here and
have no per-name code of their own: adding a scheme or an activation is one record (plus its test).
tests/engine/test_kinds.py walks every record and fails on an incomplete one.
"""
