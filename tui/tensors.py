"""Which tensors the app can show, in which order, and what they are called (docs/design.md notation).

Block l, input x^(l-1): pre h = W x + b; normed n = norm(h) (with a norm); post a = phi(n) (phi(h)
without a norm); out x^l = x^(l-1) + alpha V a (with a residual; without one the block output is the
post itself, x^l = a). Gradients of Loss = sum(x^L u): grad = dL/d post, grad_pre = dL/dh, grad_out =
dL/dx^l (with a residual). A run measures a tensor only where it exists (RunResult.tensors); the
cycle (ctrl+t) walks the tensors of the runs on screen, and a tensor that no run on screen has any more
falls back to its nearest neighbour, so nothing stale is shown. No numpy, no torch: the first frame
imports this.
"""

from __future__ import annotations

from collections.abc import Iterable

ALL_TENSORS = ("pre", "normed", "post", "out", "grad", "grad_pre", "grad_out")  # engine/result.py's order
BASE_TENSORS = ("pre", "post", "grad", "grad_pre")  # always in the cycle (grad says "tick grad" when off)
FALLBACK = {"normed": "pre", "out": "post", "grad_out": "grad"}  # a tensor the runs on screen lack -> this

_PLAIN = {"pre": "pre h^l", "normed": "normed n^l", "post": "post x^l", "out": "out x^l",
          "grad": "grad dL/dx^l", "grad_pre": "grad_pre dL/dh^l", "grad_out": "grad_out dL/dx^l"}
TENSOR_NAMES = dict(_PLAIN)  # the names without a spec at hand (palette, help)
SHORT_HELP = {"pre": "h = W x + b", "normed": "n = norm(h), where the spec has a norm",
              "post": "phi(n), or phi(h) without a norm", "out": "x^l = x^(l-1) + alpha V phi(n), with a residual",
              "grad": "dLoss/d post", "grad_pre": "dLoss/dh", "grad_out": "dLoss/dx^l, with a residual"}


def tensor_label(tensor: str, spec=None) -> str:
    """The screen name of `tensor` for a run of `spec`: with a residual, post is phi(n^l) of the branch
    and out is the block output x^l, and grad is taken at the branch's post."""
    if spec is None or not getattr(spec, "has_residual", False):
        return _PLAIN.get(tensor, tensor)
    inner = "n^l" if getattr(spec, "has_norm", False) else "h^l"
    return {"post": f"post a^l = phi({inner}), branch", "out": "out x^l, block output",
            "grad": "grad dL/da^l, branch"}.get(tensor, _PLAIN.get(tensor, tensor))


def present_tensors(result) -> tuple[str, ...]:
    """The tensors `result` measured, in ALL_TENSORS order (RunResult.tensors where the result has it)."""
    tensors = getattr(result, "tensors", None)
    if tensors is not None:
        return tuple(tensors)
    return tuple(t for t in ALL_TENSORS if t in result.stats)


def cycle_tensors(results: Iterable[object]) -> tuple[str, ...]:
    """The tensors ctrl+t walks: pre, post, grad, grad_pre always, plus normed, out and grad_out where a
    run in `results` (those on screen) measured them; in ALL_TENSORS order."""
    have = set(BASE_TENSORS)
    for r in results:
        if r is not None:
            have.update(present_tensors(r))
    return tuple(t for t in ALL_TENSORS if t in have)


def next_tensor(current: str, results: Iterable[object]) -> str:
    cycle = cycle_tensors(results)
    current = shown_tensor(current, cycle)
    return cycle[(cycle.index(current) + 1) % len(cycle)]


def shown_tensor(current: str, cycle: tuple[str, ...]) -> str:
    """`current` if it is in the cycle, else where it falls back to (normed -> pre, out -> post, grad_out
    -> grad)."""
    while current not in cycle and current in FALLBACK:
        current = FALLBACK[current]
    return current if current in cycle else "post"
