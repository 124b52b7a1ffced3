"""JAX jit (CPU), a peer when `jax` is installed (it is not a dependency: `pip install "jax[cpu]"`). The same step
written as a JAX user writes it: a pure cost of the parameters, `jax.value_and_grad`, the update, all inside one
`jax.jit`; float64 needs `jax_enable_x64`, which this module sets."""
from __future__ import annotations

import numpy as np

name = "jax"


def available():
    try:
        import jax
    except ImportError as e:
        return False, f'not installed ({e}); `pip install "jax[cpu]"` to add JAX jit as a peer'
    jax.config.update("jax_enable_x64", True)
    return True, f"jax {jax.__version__} jit on {jax.default_backend()}"


def _jax():
    import jax
    jax.config.update("jax_enable_x64", True)
    return jax


class MLP:
    def __init__(self, problem):
        jax = _jax()
        jnp = jax.numpy
        self.X, self.Y = jnp.asarray(problem.X), jnp.asarray(problem.Y)
        self.params = [jnp.asarray(p.copy()) for p in problem.params]
        hidden, output, lr = problem.hidden, problem.output, problem.lr
        act = jnp.tanh if hidden == "tanh" else jax.nn.relu

        def cost(params, X, Y):
            A, L = X, len(params) // 2
            for l in range(L - 1):
                A = act(params[2 * l] @ A + params[2 * l + 1])
            Z = params[-2] @ A + params[-1]
            m = X.shape[1]
            if output == "sigmoid":
                A = jax.nn.sigmoid(Z)
                return -jnp.sum(Y * jnp.log(A) + (1 - Y) * jnp.log(1 - A)) / m
            return -jnp.sum(Y * jax.nn.log_softmax(Z, axis=0)) / m

        grad_fn = jax.value_and_grad(cost)

        @jax.jit
        def step(params, X, Y):
            J, grads = grad_fn(params, X, Y)
            return [p - lr * g for p, g in zip(params, grads)], J

        self._step, self._grad = step, jax.jit(grad_fn)

    def step(self):
        self.params, J = self._step(self.params, self.X, self.Y)
        J.block_until_ready()

    def gradients(self):
        J, grads = self._grad(self.params, self.X, self.Y)
        return float(J), [np.asarray(g) for g in grads]

    def param_arrays(self):
        return [np.asarray(p) for p in self.params]


class Chain:
    """y = x; N times y = y * c; J = sum(y), differentiated by jax.grad inside one jax.jit (traced once: the
    trace of a long chain takes a while)."""

    def __init__(self, problem):
        jax = _jax()
        jnp = jax.numpy
        c, n = problem.factor, problem.n_ops
        self.x = jnp.asarray(problem.x.copy())

        def J(x):
            y = x
            for _ in range(n):
                y = y * c
            return jnp.sum(y)

        self._grad = jax.jit(jax.grad(J))

    def forward(self):
        return self._grad(self.x).block_until_ready()

    def backward(self, g):
        return g

    def grad(self):
        return np.asarray(self.backward(self.forward()))
