"""The graph of a root and every gradient in it, read through the graph's public face only: `toposort`, `t.creator`,
`fn.inputs`, and the backward pass's hook (course notes 2.3).

Node ids are stable: the i-th tensor of `toposort(roots, include_constants=True)` is `t{i}`."""
from __future__ import annotations

import numpy as np

from ..tensor import Tensor, run_backward, toposort
from .summary import clean


class GraphReleasedError(RuntimeError):
    """The graph was freed by a backward() without retain_graph=True."""


class Trace:
    """The graph of `roots` and, when it can be computed, every gradient in it.

    tensors: toposort(roots, include_constants=True) order; ids: {tensor: "t{i}"};
    grads: {tensor: final gradient ndarray}; steps: one dict per op in the engine's backward order with keys
    out, fn, grad_out, in_grads (copies, captured by the run_backward hook); consumers: {tensor: [(out, k)]}.
    """

    def __init__(self, roots, tensors, grads, steps, seed_grads, note):
        self.roots, self.tensors, self.grads, self.steps = roots, tensors, grads, steps
        self.seed_grads, self.note = seed_grads, note
        self.ids = {t: f"t{i}" for i, t in enumerate(tensors)}
        self.consumers = {t: [] for t in tensors}  # tensor -> [(out tensor, input index)]
        for t in tensors:
            if t.creator is not None:
                for k, x in enumerate(t.creator.inputs):
                    self.consumers[x].append((t, k))

    def name(self, t) -> str:
        """The tensor's name (control characters made visible), or its node id when it has none."""
        return clean(t.name) if t.name is not None else self.ids[t]


def as_roots(root, where) -> list:
    roots = list(root) if isinstance(root, (list, tuple)) else [root]
    if not roots or not all(isinstance(r, Tensor) for r in roots):
        raise TypeError(f"{where}: expected a Tensor (or a list of Tensors) as the root, got {type(root).__name__}")
    return roots


def trace(root, grad=None, *, gradients=True) -> Trace:
    """Walk the graph of `root` with `toposort` and run the backward pass once with `retain_graph=True`,
    capturing the gradient of every tensor and every op's step (course notes 2.3: dZ, dW, db layer by layer).
    A non-scalar root needs `grad` (its upstream gradient) for gradients to be computed; without it none are.
    No `.grad` is touched."""
    roots = as_roots(root, "trace")
    try:
        tensors = toposort(roots, include_constants=True)
    except RuntimeError:
        raise GraphReleasedError(
            "viz: this graph was already released by backward() (ops no longer hold their inputs); draw it "
            "before calling backward(), or call backward(retain_graph=True)") from None
    other = next((t.data for t in tensors if not isinstance(t.data, np.ndarray)), None)
    if other is not None:  # the pictures show values: they would have to be computed and copied here, silently
        library = type(other).__module__.split(".")[0]
        raise TypeError(f"viz draws graphs of NumPy tensors; this one holds arrays of {library}. Draw the same "
                        f"computation on NumPy arrays (a few columns of the data are enough)")
    grads, steps, seeds, note = {}, [], {}, ""
    live = [r for r in roots if r.requires_grad]
    if gradients and live:
        if grad is None and any(r.size != 1 for r in live):
            note = "gradients not shown: the root is not a scalar (pass grad= of its shape)"
        else:
            given = None if grad is None else (list(grad) if isinstance(grad, (list, tuple)) else [grad])
            if given is not None and len(given) != len(live):
                raise ValueError(f"trace: got {len(given)} grad arrays for {len(live)} roots that require grad")
            for i, r in enumerate(live):
                g = np.ones_like(r.data) if given is None else np.asarray(
                    given[i].data if isinstance(given[i], Tensor) else given[i], dtype=r.dtype)
                if g.shape != r.shape:
                    raise ValueError(f"trace: grad has shape {g.shape} but the root has shape {r.shape}")
                seeds[r] = g
                grads[r] = g.copy()

            def hook(out, fn, grad_out, input_grads):
                in_copy = [None if gx is None else np.array(gx, copy=True) for gx in input_grads]
                steps.append({"out": out, "fn": fn, "grad_out": np.array(grad_out, copy=True), "in_grads": in_copy})
                for x, gx in zip(fn.inputs, in_copy):  # accumulate in arrival order, as the engine does
                    if gx is not None and x.requires_grad:
                        grads[x] = gx.copy() if x not in grads else grads[x] + gx

            run_backward(live, [seeds[r] for r in live], retain_graph=True, hook=hook)
    return Trace(roots, tensors, grads, steps, seeds, note)
