"""Small classification tasks made in code (no downloads), and a mini-batch iterator.

Each generator returns `(X, y)`: X a float array of `dtype` (default: cygrad's default dtype),
y int64 class indices. Samples are shuffled, classes are balanced (their sizes differ by at
most one), and the same seed gives the same arrays bitwise. Values are computed in float64 and
rounded once to dtype, so float32 and float64 versions of a task agree to rounding.
An integer seed draws from a numpy generator of its own (PCG64); a seed of None draws from
cygrad's stream (`cygrad.random.generator()`, reset by `cygrad.manual_seed`).

    X, y = cygrad.data.spirals(300, n_classes=3)
    for Xb, yb in cygrad.data.batches(X, y, batch_size=32): ...
"""

import numbers
import operator

import numpy as np

from . import dtypes, random

__all__ = ["spirals", "moons", "xor", "blobs", "bars_and_crosses", "batches"]


# ---------------------------------------------------------------------- helpers

def _check_int(name, value, minimum):
    try:
        if isinstance(value, bool):
            raise TypeError
        value = operator.index(value)
    except TypeError:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}") from None
    if value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value}")
    return value


def _check_nonnegative(name, value):
    if not isinstance(value, numbers.Real) or not value >= 0:
        raise ValueError(f"{name} must be a number >= 0, got {value!r}")
    return float(value)


def _rng(seed):
    """A numpy generator of its own for an explicit seed; cygrad's stream for None."""
    if seed is None:
        return _CygradStream(random.generator())
    return np.random.default_rng(_check_int("seed", seed, 0))


class _CygradStream:
    """The four numpy Generator draws the tasks use, taken from a cygrad (torch) generator."""

    def __init__(self, generator):
        self.generator = generator

    def standard_normal(self, size):
        return random.normal_(np.empty(size), generator=self.generator)

    def uniform(self, low, high, size):
        return random.uniform_(np.empty(size), low, high, generator=self.generator)

    def integers(self, low, high, size):
        return random.randint(low, high, size, generator=self.generator)

    def permutation(self, n):
        return random.randperm(n, generator=self.generator)


def _class_sizes(n_samples, n_classes):
    """Balanced sizes: the first n_samples % n_classes classes get one more sample."""
    base, extra = divmod(n_samples, n_classes)
    return [base + (k < extra) for k in range(n_classes)]


def _finish(X, y, rng, dtype):
    """Shuffle rows together and set the dtypes."""
    dtype = dtypes.get_default_dtype() if dtype is None else dtypes.as_dtype(dtype)
    if not dtype.is_floating_point:
        raise TypeError(f"task data must be float32 or float64, got {dtype}")
    order = rng.permutation(len(y))
    return X[order].astype(dtype.numpy), y[order].astype(np.int64)


# ---------------------------------------------------------------------- 2-D point clouds

def spirals(n_samples=200, n_classes=2, noise=0.2, seed=0, dtype=None):
    """Interleaved spiral arms, one per class: not linearly separable.

    Arm k, sample at t in [0, 1]:  r = t,  theta = 2*pi*k/K + 3*pi*t + noise * N(0, 1),
    x = (r cos theta, r sin theta); each arm winds one and a half turns. Noise is on the angle
    (in radians), as in the cs231n spirals. X: (n_samples, 2), y: (n_samples,).
    """
    n_samples = _check_int("n_samples", n_samples, 1)
    n_classes = _check_int("n_classes", n_classes, 2)
    noise = _check_nonnegative("noise", noise)
    rng = _rng(seed)
    X, y = [], []
    for k, n in enumerate(_class_sizes(n_samples, n_classes)):
        t = np.linspace(0.0, 1.0, n)
        theta = 2 * np.pi * k / n_classes + 3 * np.pi * t + noise * rng.standard_normal(n)
        X.append(np.stack([t * np.cos(theta), t * np.sin(theta)], axis=1))
        y.append(np.full(n, k))
    return _finish(np.concatenate(X), np.concatenate(y), rng, dtype)


def moons(n_samples=200, noise=0.1, seed=0, dtype=None):
    """Two interleaving half circles (scikit-learn's make_moons), 2 classes.

    Class 0: (cos s, sin s); class 1: (1 - cos s, 0.5 - sin s), s in [0, pi];
    plus N(0, noise**2) on each coordinate. X: (n_samples, 2), y: (n_samples,).
    """
    n_samples = _check_int("n_samples", n_samples, 1)
    noise = _check_nonnegative("noise", noise)
    rng = _rng(seed)
    n_outer, n_inner = _class_sizes(n_samples, 2)
    s_outer = np.linspace(0.0, np.pi, n_outer)
    s_inner = np.linspace(0.0, np.pi, n_inner)
    X = np.concatenate([np.stack([np.cos(s_outer), np.sin(s_outer)], axis=1),
                        np.stack([1 - np.cos(s_inner), 0.5 - np.sin(s_inner)], axis=1)])
    X = X + noise * rng.standard_normal(X.shape)
    y = np.concatenate([np.zeros(n_outer), np.ones(n_inner)])
    return _finish(X, y, rng, dtype)


def xor(n_samples=200, noise=0.1, seed=0, dtype=None):
    """Four clusters at the corners (+-1, +-1); class = 1 where the signs of x1 and x2 differ.

    Each corner holds a quarter of the samples, spread by N(0, noise**2) per coordinate.
    No line separates the classes. X: (n_samples, 2), y: (n_samples,).
    """
    n_samples = _check_int("n_samples", n_samples, 1)
    noise = _check_nonnegative("noise", noise)
    rng = _rng(seed)
    # Corners alternate classes, so the remainder of n_samples / 4 keeps classes balanced.
    corners = [((1, 1), 0), ((1, -1), 1), ((-1, -1), 0), ((-1, 1), 1)]
    X, y = [], []
    for (centre, label), n in zip(corners, _class_sizes(n_samples, 4), strict=True):
        X.append(np.asarray(centre, dtype=np.float64) + noise * rng.standard_normal((n, 2)))
        y.append(np.full(n, label))
    return _finish(np.concatenate(X), np.concatenate(y), rng, dtype)


def blobs(n_samples=200, n_classes=3, n_features=2, cluster_std=1.0, seed=0, dtype=None):
    """Isotropic Gaussian clusters (scikit-learn's make_blobs with centers drawn in a box).

    Centre of class k ~ U(-10, 10)**n_features; samples ~ N(centre, cluster_std**2 I).
    X: (n_samples, n_features), y: (n_samples,).
    """
    n_samples = _check_int("n_samples", n_samples, 1)
    n_classes = _check_int("n_classes", n_classes, 2)
    n_features = _check_int("n_features", n_features, 1)
    cluster_std = _check_nonnegative("cluster_std", cluster_std)
    rng = _rng(seed)
    centres = rng.uniform(-10.0, 10.0, size=(n_classes, n_features))
    X, y = [], []
    for k, n in enumerate(_class_sizes(n_samples, n_classes)):
        X.append(centres[k] + cluster_std * rng.standard_normal((n, n_features)))
        y.append(np.full(n, k))
    return _finish(np.concatenate(X), np.concatenate(y), rng, dtype)


# ---------------------------------------------------------------------- a tiny image task

BARS_AND_CROSSES_CLASSES = ("horizontal bar", "vertical bar", "cross")


def bars_and_crosses(n_samples=200, size=8, noise=0.1, seed=0, dtype=None):
    """size x size images of one of three shapes at a random place, plus pixel noise.

    Class 0: a horizontal bar (one full row of ones); 1: a vertical bar (one full column);
    2: a cross (one full row and one full column). Background 0, noise N(0, noise**2) per pixel.

    No linear model on raw pixels is perfect: a score w.x + b positive on every horizontal bar
    and negative on every vertical one would need sum_r(row sum r of w) + size*b > 0 and
    sum_c(column sum c of w) + size*b < 0, yet both sums equal sum(w) + size*b. A small conv
    net (bar detectors, then max-pooling) separates the classes.
    X: (n_samples, 1, size, size), y: (n_samples,) indexing BARS_AND_CROSSES_CLASSES.
    """
    n_samples = _check_int("n_samples", n_samples, 1)
    size = _check_int("size", size, 3)
    noise = _check_nonnegative("noise", noise)
    rng = _rng(seed)
    X = np.zeros((n_samples, 1, size, size))
    y = np.concatenate([np.full(n, k) for k, n in enumerate(_class_sizes(n_samples, 3))])
    rows = rng.integers(0, size, n_samples)
    cols = rng.integers(0, size, n_samples)
    for i, label in enumerate(y):
        if label in (0, 2):
            X[i, 0, rows[i], :] = 1.0
        if label in (1, 2):
            X[i, 0, :, cols[i]] = 1.0
    X += noise * rng.standard_normal(X.shape)
    return _finish(X, y, rng, dtype)


# ---------------------------------------------------------------------- mini-batches

def batches(X, y, batch_size, shuffle=True, seed=None):
    """Yield (X[idx], y[idx]) for consecutive blocks idx of a (shuffled) order of the samples.

    Every sample appears exactly once; the last batch holds the remainder (it may be smaller).
    The order is drawn when batches() is called, as one epoch of torch's
    `DataLoader(TensorDataset(X, y), batch_size, shuffle=shuffle, generator=g)` draws it, so the
    batches are torch's whenever the streams agree. g is cygrad's stream for seed=None (the
    loader's default), else `cygrad.random.Generator().manual_seed(seed)`. The loader draws an
    int64 base seed from g; shuffling, its sampler takes randperm(n) from g, or with g the
    default from a generator seeded with a second int64 drawn from it.
    """
    X, y = np.asarray(X), np.asarray(y)
    batch_size = _check_int("batch_size", batch_size, 1)
    if X.ndim == 0 or y.ndim == 0 or len(X) != len(y):
        raise ValueError(f"X and y need the same number of samples (first dimension), got "
                         f"shapes {X.shape} and {y.shape}")
    n = len(y)
    g = (random.generator() if seed is None
         else random.Generator().manual_seed(_check_int("seed", seed, 0)))
    random.draw_seed(g)  # the loader's base seed for its workers
    if not shuffle:
        order = np.arange(n)
    elif seed is None:
        order = random.randperm(n, generator=random.Generator().manual_seed(random.draw_seed(g)))
    else:
        order = random.randperm(n, generator=g)
    return _batches(X, y, order, batch_size)


def _batches(X, y, order, batch_size):
    for start in range(0, len(order), batch_size):
        idx = order[start:start + batch_size]
        yield X[idx], y[idx]
