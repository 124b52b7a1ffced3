"""Logistic regression as a neural network: one sigmoid unit on the breast-cancer data.

Course notes §1.2 (Logistic Regression as a Neural Network) and §1.2.1 (Gradient Descent, Algorithm 1.3):
    Z = w^T X + b,  A = sigmoid(Z),  J = -(1/m) sum(Y log A + (1 - Y) log(1 - A)),
    w := w - alpha dw,  b := b - alpha db,
with w = 0, b = 0 at the start. The derivatives dw, db come from `cost.backward()`, not from hand-written formulas.
The inputs are normalized with the training set's mu and sigma (§3.2.1).

    python examples/logistic_regression.py [--quick] [--seed N] [--out DIR] [--threads N] [--iterations N] [--lr ALPHA]
"""
import os

import numpy as np
from sklearn.datasets import load_breast_cancer

import common
import tinygrad_dl as dl
import tinygrad_dl.functional as F


def main():
    args = common.parse_args("logistic_regression", __doc__, lambda p: (
        p.add_argument("--iterations", type=int, default=1000, help="gradient descent steps (default 1000)"),
        p.add_argument("--lr", type=float, default=0.5, help="learning rate alpha (default 0.5)")))
    iterations = 50 if args.quick else args.iterations

    cancer = load_breast_cancer()                           # 569 tumours, 30 features; 1 = benign
    X = dl.data.columns(cancer.data)                        # (30, 569): examples are columns
    Y = cancer.target.reshape(1, -1).astype(np.float64)     # (1, 569)
    (X_train, Y_train), (X_test, Y_test) = dl.data.split(X, Y, fractions=(0.8, 0.2), rng=args.seed)
    norm = dl.data.Normalizer().fit(X_train)
    X_train, X_test = dl.Tensor(norm(X_train), name="X"), dl.Tensor(norm(X_test), name="X_test")
    n_x, m = X_train.shape
    print(f"breast cancer: n_x = {n_x}, m_train = {m}, m_test = {X_test.shape[1]}")

    w = dl.Tensor(np.zeros((n_x, 1)), requires_grad=True, name="w")
    b = dl.Tensor(np.zeros((1, 1)), requires_grad=True, name="b")
    opt = dl.optim.GradientDescent([w, b], lr=args.lr)

    costs = []
    bar = common.Progress(iterations, "gradient descent", every=max(1, iterations // 10))
    for i in bar:
        A = F.sigmoid(w.T @ X_train + b)                   # (1, m)
        cost = F.binary_cross_entropy(A, Y_train)
        opt.zero_grad()
        cost.backward()                                     # dw = (1/m) X dZ^T, db = (1/m) sum(dZ)
        opt.step()
        costs.append(cost.item())
        bar.log(i, cost=costs[-1])

    def logits(X):                                          # Z = w^T X + b; predict: A = sigmoid(Z) > 0.5 <=> Z > 0
        return w.T @ X + b
    train_acc = dl.nn.accuracy(dl.nn.predict(logits, X_train), Y_train, from_logits=True)
    test_acc = dl.nn.accuracy(dl.nn.predict(logits, X_test), Y_test, from_logits=True)
    print(f"train accuracy {train_acc:.4f}   test accuracy {test_acc:.4f}")
    common.plot_curves(os.path.join(args.out, "cost.png"), {"J": costs}, xlabel="iteration",
                       title=f"logistic regression, alpha = {args.lr}")
    common.result(train_acc=train_acc, test_acc=test_acc, final_cost=costs[-1])


if __name__ == "__main__":
    main()
