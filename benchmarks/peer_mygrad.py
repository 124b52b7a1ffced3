"""MyGrad: mygrad tensors and mygrad.nnet (sigmoid, relu, softmax_crossentropy); the update is in place on
`tensor.data` after backward (which releases MyGrad's write locks)."""
from __future__ import annotations

import numpy as np

from benchmarks.workloads import TapeChain

name = "mygrad"


def available():
    try:
        import mygrad
    except ImportError as e:
        return False, f"not installed ({e}); `pip install mygrad`"
    return True, f"mygrad {mygrad.__version__}"


class MLP:
    def __init__(self, problem):
        import mygrad as mg
        from mygrad.nnet.activations import relu, sigmoid
        from mygrad.nnet.losses import softmax_crossentropy
        self.mg, self.sigmoid, self.softmax_ce = mg, sigmoid, softmax_crossentropy
        self.act = mg.tanh if problem.hidden == "tanh" else relu
        self.X, self.Y, self.output, self.lr = problem.X, problem.Y, problem.output, problem.lr
        self.labels = None if problem.labels is None else np.asarray(problem.labels)
        self.params = [mg.tensor(p.copy()) for p in problem.params]

    def cost(self):
        params, A, mg = self.params, self.X, self.mg
        L = len(params) // 2
        for l in range(L - 1):
            A = self.act(params[2 * l] @ A + params[2 * l + 1])
        Z = params[-2] @ A + params[-1]
        if self.output == "sigmoid":
            A = self.sigmoid(Z)
            Y = self.Y
            return -mg.mean(Y * mg.log(A) + (1.0 - Y) * mg.log(1.0 - A))
        return self.softmax_ce(Z.T, self.labels)

    def step(self):
        self.cost().backward()
        lr = self.lr
        for p in self.params:
            p.data -= lr * p.grad

    def gradients(self):
        J = self.cost()
        J.backward()
        return float(J.item()), [p.grad.copy() for p in self.params]

    def param_arrays(self):
        return [p.data for p in self.params]


class Chain(TapeChain):
    def leaf(self, array):
        import mygrad as mg
        return mg.tensor(array)

    def backward(self, J):  # MyGrad sets a fresh .grad on every backward
        J.backward()
        return self.x.grad
