"""Data augmentation as a regularizer: digits learned from few examples, with and without shifted copies.

Course notes §3.1 (Regularization, data augmentation): more training images from transformed copies of the ones we
have. dl.data.augment(X, Y, image_shape=(8, 8), shifts=1, copies=k) adds k copies of every training image, each
moved by up to one pixel (zero fill); no flips, since a mirrored digit is another symbol. The network and the
number of steps are the same in both runs; only the training set differs. Both are measured on the dev set and on
a 'shifted dev set' (the same dev images, each moved by up to one pixel, as off-centre handwriting would be).

What it shows: scikit-learn's digits are already centred and scaled, so shifted copies add little for the centred
dev set (the course's rule: augment with the variations the dev/test data really has); on off-centre digits the
augmented network is far better. With fewer training images (--m-train 50) augmentation also helps on the centred
dev set for some seeds: measure, do not assume.

    python examples/augmentation.py [--quick] [--seed N] [--out DIR] [--threads N]
        [--epochs N] [--copies K] [--m-train M]
"""
import os

import matplotlib.pyplot as plt

import common
import tinygrad_dl as dl
import tinygrad_dl.functional as F

LAYER_DIMS = [64, 64, 10]


def softmax_cost(model, X, Y):
    """J = -(1/m) sum(Y log softmax(Z[L])), with integer labels Y (1, m)."""
    return F.cross_entropy(model(X), common.labels(Y))


def main():
    args = common.parse_args("augmentation", __doc__, lambda p: (
        p.add_argument("--epochs", type=int, default=40, help="passes over the augmented set (default 40)"),
        p.add_argument("--copies", type=int, default=4, help="shifted copies of each image (default 4)"),
        p.add_argument("--shifts", type=int, default=1, help="largest shift in pixels (default 1)"),
        p.add_argument("--noise", type=float, default=0.0, help="std of added Gaussian pixel noise (default 0)"),
        p.add_argument("--m-train", type=int, default=150, help="training images before augmentation (default 150)")))
    epochs = 8 if args.quick else args.epochs
    (X, Y), (X_dev, Y_dev), _ = common.digits(rng=args.seed)
    X, Y = X[:, :args.m_train], Y[:, :args.m_train]
    X_aug, Y_aug = dl.data.augment(X, Y, image_shape=(8, 8), shifts=args.shifts, noise=args.noise,
                                     copies=args.copies, rng=args.seed)
    X_shifted, Y_shifted = dl.data.augment(X_dev, Y_dev, image_shape=(8, 8), shifts=1, copies=1,
                                           include_original=False, rng=args.seed + 1)
    print(f"digits: m_train = {X.shape[1]} (augmented: {X_aug.shape[1]}), m_dev = {X_dev.shape[1]}")

    rows, curves, dev, shifted = [], {}, {}, {}
    for name, (X_t, Y_t) in {"original": (X, Y), f"augmented x{args.copies + 1}": (X_aug, Y_aug)}.items():
        model = common.mlp(LAYER_DIMS, rng=args.seed)
        opt = dl.optim.Adam(model.parameters(), lr=0.003)
        # the same number of steps for both: the original set is seen (copies + 1) times more often
        n_epochs = epochs * (args.copies + 1) if X_t is X else epochs
        curves[name] = common.train(model, softmax_cost, opt, X_t, Y_t, n_epochs, batch_size=32, rng=args.seed,
                                    desc=name.split()[0])
        train_acc, dev_acc = common.accuracy(model, X, Y), common.accuracy(model, X_dev, Y_dev)
        shifted_acc = common.accuracy(model, X_shifted, Y_shifted)
        dev[name.split()[0]], shifted[name.split()[0]] = dev_acc, shifted_acc
        rows.append([name, X_t.shape[1], n_epochs, train_acc, dev_acc, shifted_acc])
    common.table(rows, ["training set", "m", "epochs", "train acc (original images)", "dev acc", "shifted dev acc"])

    fig, axes = plt.subplots(2, 6, figsize=(9, 3.4))       # top: originals; bottom: their first shifted copy
    for k in range(6):
        for row, column in enumerate((k, X.shape[1] + k)):
            axes[row, k].imshow(X_aug[:, column].reshape(8, 8), cmap="gray_r")
            axes[row, k].set_title(f"{'copy' if row else 'original'}: {int(Y_aug[0, column])}", fontsize=8)
            axes[row, k].axis("off")
    common.save(fig, os.path.join(args.out, "samples.png"))
    print(f"augmentation: dev accuracy {dev['original']:.4f} -> {dev['augmented']:.4f}, "
          f"shifted dev accuracy {shifted['original']:.4f} -> {shifted['augmented']:.4f}")
    common.result(dev_acc_original=dev["original"], dev_acc_augmented=dev["augmented"],
                  shifted_dev_acc_original=shifted["original"], shifted_dev_acc_augmented=shifted["augmented"],
                  m_train=X.shape[1], m_augmented=X_aug.shape[1])


if __name__ == "__main__":
    main()
