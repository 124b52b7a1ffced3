"""tinygrad_dl: a small, exact, fast reverse-mode autograd on NumPy, in the notation of the DeepLearning.AI course.

The public face: re-exports only. See README.md for the API and examples.
"""
from .tensor import (Function, ShapeError, Tensor, detect_anomaly, enable_grad, grad, is_grad_enabled, no_grad,
                     toposort)
from .ops import broadcast_to, concatenate, maximum, minimum, stack, where
from . import tensor, ops, functional, nn, init, optim, data, testing, viz
from .gradcheck import gradcheck
from ._namespace import namespace as array_namespace
from .jit import JitWarning, jit

__version__ = "0.1.0"

__all__ = ["Tensor", "Function", "ShapeError", "grad", "no_grad", "enable_grad", "is_grad_enabled", "detect_anomaly",
           "toposort", "where", "maximum", "minimum", "concatenate", "stack", "broadcast_to", "gradcheck", "jit",
           "JitWarning", "array_namespace", "tensor", "ops", "functional", "nn", "init", "optim", "data", "testing", "viz"]
