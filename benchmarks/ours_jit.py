"""`ours-jit` (the "tinygrad_dl jit" column): `ours`'s training step, unchanged, wrapped in `dl.jit`.

The model, cost and optimizer are those of `benchmarks/ours.py`. The step is captured once when the
implementation is built (an eager step, after which the initial parameters are put back in place), so every step
the harness times or verifies is a replay. The chain is `y = x; N times y = y * c; y.sum().backward()` as one
jitted function: the harness's forward time is the whole replay and its backward time the reading of `x.grad`.
"""
from __future__ import annotations

import time

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
    def __init__(self, problem):
        super().__init__(problem)
        x, c, n = self.x, self.c, self.n

        def forward_backward():
            y = x
            for _ in range(n):
                y = y * c
            y.sum().backward()

        self._step = dl.jit(forward_backward)
        t0 = time.perf_counter()
        x.grad = None
        self._step()
        self.capture_seconds = time.perf_counter() - t0

    def leaf(self, array):
        return dl.Tensor(array, requires_grad=True)

    def forward(self):
        self.x.grad = None
        self._step()

    def backward(self, J):
        return self.x.grad
