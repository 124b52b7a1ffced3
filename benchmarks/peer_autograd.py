"""HIPS autograd: the cost written with autograd.numpy, differentiated by value_and_grad; the update is done on
the plain ndarrays in place. The chain uses make_vjp so that forward and backward are timed apart."""
from __future__ import annotations

name = "autograd"


def available():
    try:
        import autograd  # noqa: F401 - only whether it imports
    except ImportError as e:
        return False, f"not installed ({e}); `pip install autograd`"
    from importlib.metadata import version
    return True, f"autograd {version('autograd')}"


class MLP:
    def __init__(self, problem):
        import autograd.numpy as anp
        from autograd import value_and_grad
        from autograd.scipy.special import logsumexp
        X, Y, m = problem.X, problem.Y, problem.X.shape[1]
        hidden, output = problem.hidden, problem.output
        act = anp.tanh if hidden == "tanh" else (lambda Z: anp.maximum(Z, 0.0))

        def cost(params):
            A, L = X, len(params) // 2
            for l in range(L - 1):
                A = act(params[2 * l] @ A + params[2 * l + 1])
            Z = params[-2] @ A + params[-1]
            if output == "sigmoid":
                A = 1.0 / (1.0 + anp.exp(-Z))
                return -anp.sum(Y * anp.log(A) + (1.0 - Y) * anp.log(1.0 - A)) / m
            return -anp.sum(Y * (Z - logsumexp(Z, axis=0, keepdims=True))) / m

        self.value_and_grad = value_and_grad(cost)
        self.params = [p.copy() for p in problem.params]
        self.lr = problem.lr

    def step(self):
        _, grads = self.value_and_grad(self.params)
        lr = self.lr
        for p, g in zip(self.params, grads):
            p -= lr * g

    def gradients(self):
        J, grads = self.value_and_grad(self.params)
        return float(J), [g.copy() for g in grads]

    def param_arrays(self):
        return self.params


class Chain:
    def __init__(self, problem):
        import numpy as np
        from autograd import make_vjp
        c, n = problem.factor, problem.n_ops

        def f(x):
            y = x
            for _ in range(n):
                y = y * c
            return y.sum()

        self.make_vjp = make_vjp(f)
        self.x = problem.x.copy()
        self.one = np.ones((), dtype=problem.x.dtype)

    def forward(self):
        return self.make_vjp(self.x)

    def backward(self, vjp_and_value):
        vjp, _ = vjp_and_value
        return vjp(self.one)

    def grad(self):
        return self.backward(self.forward())
