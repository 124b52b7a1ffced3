"""`ours-jit` (the "tinygrad_dl jit" column): `ours`'s training step, unchanged, wrapped in `dl.jit`.

The model, cost and optimizer are those of `benchmarks/ours.py`. The step is captured once when the
implementation is built (an eager step, after which the initial parameters are put back in place), so every step
the harness times or verifies is a replay. The chain is `y = x; N times y = y * c; y.sum().backward()` as one
jitted function: the harness's forward time is the whole replay and its backward time the reading of `x.grad`.
"""
from __future__ import annotations

import time

import numpy as np

import tinygrad_dl as dl
from benchmarks import ours
from benchmarks.workloads import TapeChain

name = "ours-jit"


def available():
    return True, (f"tinygrad_dl {getattr(dl, '__version__', '?')} with dl.jit: the step of `ours` captured once, "
                  f"replayed as straight-line NumPy")


class MLP(ours.MLP):
    def __init__(self, problem):
        super().__init__(problem)
        cost, opt = self.cost, self.opt

        def step(X, Y):
            J = cost(X, Y)
            J.backward()
            opt.step()
            opt.zero_grad()
            return J  # (the cost is computed, as the baseline computes it, and as a training loop logs it)

        def gradients(X, Y):
            opt.zero_grad()
            J = cost(X, Y)
            J.backward()
            return J

        self._step, self._gradients = dl.jit(step), dl.jit(gradients)
        initial = [p.data.copy() for p in self.params]
        t0 = time.perf_counter()
        self._step(self.X, self.Y)                    # the capture: one eager step, recorded
        self.capture_seconds = time.perf_counter() - t0
        for p, value in zip(self.params, initial):    # back to the shared initial parameters (read in place)
            p.data[...] = value
        opt.zero_grad()

    def step(self):
        self._step(self.X, self.Y)

    def gradients(self):
        self._gradients(self.X, self.Y)               # the capture
        J = self._gradients(self.X, self.Y)           # a replay: what is verified
        grads = [p.grad.copy() for p in self.params]
        self.opt.zero_grad()
        return float(J.item()), grads


class Chain(TapeChain):
    """The factor is passed as a 0-d array argument (data), as the parameters of a real network are: otherwise the
    gradient, a product of constants, depends on no data and the capture computes it once (constant folding),
    leaving a replay nothing but the forward pass to time."""

    def __init__(self, problem):
        super().__init__(problem)
        x, n = self.x, self.n
        self.factor = np.asarray(self.c, dtype=problem.dtype)

        def forward_backward(c):
            y = x
            for _ in range(n):
                y = y * c
            J = y.sum()
            J.backward()
            return J

        self._step = dl.jit(forward_backward)
        t0 = time.perf_counter()
        x.grad = None
        self._step(self.factor)
        self.capture_seconds = time.perf_counter() - t0

    def leaf(self, array):
        return dl.Tensor(array, requires_grad=True)

    def forward(self):
        self.x.grad = None
        return self._step(self.factor)

    def backward(self, J):
        return self.x.grad
