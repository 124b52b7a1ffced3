"""PyTorch CPU eager: the same step written the way a PyTorch user writes it (F.binary_cross_entropy,
F.cross_entropy on logits, an in-place update under torch.no_grad())."""
from __future__ import annotations

import os

import numpy as np

from benchmarks.workloads import TapeChain

name = "torch"


def available():
    try:
        import torch
    except ImportError as e:
        return False, f"not installed ({e}); `pip install torch==2.13.0` (the CPU build)"
    return True, f"torch {torch.__version__}, {torch.get_num_threads()} intra-op thread(s)"


def _torch():
    import torch
    n = int(os.environ.get("BENCH_THREADS", "1"))
    if torch.get_num_threads() != n:
        torch.set_num_threads(n)
    return torch


class MLP:
    def __init__(self, problem):
        torch = self.torch = _torch()
        import torch.nn.functional as F
        self.F = F
        self.X = torch.from_numpy(problem.X)
        self.Y = torch.from_numpy(problem.Y)
        self.labels = None if problem.labels is None else torch.from_numpy(np.asarray(problem.labels))
        self.params = [torch.tensor(p.copy(), requires_grad=True) for p in problem.params]
        self.hidden, self.output, self.lr = problem.hidden, problem.output, problem.lr
        self.act = torch.tanh if problem.hidden == "tanh" else torch.relu

    def cost(self):
        params, A = self.params, self.X
        L = len(params) // 2
        for l in range(L - 1):
            A = self.act(params[2 * l] @ A + params[2 * l + 1])
        Z = params[-2] @ A + params[-1]
        if self.output == "sigmoid":
            return self.F.binary_cross_entropy(self.torch.sigmoid(Z), self.Y)
        return self.F.cross_entropy(Z.T, self.labels)

    def step(self):
        self.cost().backward()
        with self.torch.no_grad():
            for p in self.params:
                p.sub_(p.grad, alpha=self.lr)
                p.grad = None

    def gradients(self):
        J = self.cost()
        J.backward()
        grads = [p.grad.numpy().copy() for p in self.params]
        for p in self.params:
            p.grad = None
        return float(J.item()), grads

    def param_arrays(self):
        return [p.detach().numpy() for p in self.params]


class Chain(TapeChain):
    def leaf(self, array):
        return _torch().tensor(array, requires_grad=True)

    def to_numpy(self, grad):
        return grad.numpy()
