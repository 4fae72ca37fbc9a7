"""Random tensors and in-place random fills, under torch's names and signatures.

The draws are cygrad.random's, which are torch's CPU draws bit for bit: after
`cygrad.manual_seed(s)` and `torch.manual_seed(s)`, `cygrad.randn(27, 10)` and
`torch.randn(27, 10)` hold the same bits. `generator=` takes a `cygrad.Generator`; without one
the calling thread's generator is used (cygrad.random has the per-thread rules).

    factories   rand randn randint randperm rand_like randn_like randint_like normal
    sampling    bernoulli multinomial (functions and methods)
    in place    uniform_ normal_ random_ bernoulli_ exponential_
    seeding     Generator manual_seed seed initial_seed get_rng_state set_rng_state
"""

import numpy as np

from .. import random
from ..tensor import Tensor, _local, _wrap, check_device
from . import registry
from .factories import _dtype_or_default, _finish, _size, _size_of
from .registry import export


def _result(array, out, requires_grad):
    if out is not None:
        out._write(_wrap(array))
        return out
    return _finish(array, requires_grad)


def _args(args, kwargs, names, where):
    """torch's positional-or-keyword reading of `names` (a name missing from both: None)."""
    if len(args) > len(names):
        raise TypeError(f"{where}() takes at most {len(names)} arguments ({len(args)} given)")
    values = dict(zip(names, args))
    for k, v in kwargs.items():
        if k not in names or k in values:
            raise TypeError(f"{where}() got an unexpected or repeated argument {k!r}")
        values[k] = v
    return [values.get(n) for n in names]


# ---------------------------------------------------------------------- factories

@export("rand")
def rand(*args, size=None, generator=None, out=None, dtype=None, layout=None, device=None,
         requires_grad=False, pin_memory=False):
    """U[0, 1) samples of the given size (the default float dtype unless given)."""
    check_device(device)
    array = np.empty(_size_of(args, size, "rand"), _dtype_or_default(dtype).numpy)
    return _result(random.uniform_(array, 0.0, 1.0, generator), out, requires_grad)


@export("randn")
def randn(*args, size=None, generator=None, out=None, dtype=None, layout=None, device=None,
          requires_grad=False, pin_memory=False):
    """N(0, 1) samples of the given size (the default float dtype unless given)."""
    check_device(device)
    array = np.empty(_size_of(args, size, "randn"), _dtype_or_default(dtype).numpy)
    return _result(random.normal_(array, 0.0, 1.0, generator), out, requires_grad)


def _low_high(args, kwargs, where, lead=()):
    """randint's (low=0, high, size) with low optional: (high, size) or (low, high, size)."""
    names = ("low", "high") + lead
    given = len(args) + sum(k in names for k in kwargs)
    if given == len(names) - 1 and "low" not in kwargs:
        args = (0,) + tuple(args)
    low, high, *rest = _args(args, kwargs, names, where)
    if high is None or any(r is None for r in rest):
        raise TypeError(f"{where}() missing a required argument: {names[1:]}")
    return (0 if low is None else low), high, rest


@export("randint")
def randint(*args, generator=None, out=None, dtype=None, layout=None, device=None,
            requires_grad=False, **kwargs):
    """Integers uniform on [low, high) of the given size: randint(high, size) or
    randint(low, high, size); int64 unless dtype is given."""
    check_device(device)
    low, high, (size,) = _low_high(args, kwargs, "randint", ("size",))
    d = np.int64 if dtype is None else _dtype_or_default(dtype).numpy
    array = random.randint(low, high, _size((size,), "randint"), d, generator)
    return _result(array, out, requires_grad)


@export("randperm")
def randperm(n, *, generator=None, out=None, dtype=None, layout=None, device=None,
             requires_grad=False, pin_memory=False):
    """A random permutation of 0..n-1 (int64 unless dtype is given)."""
    check_device(device)
    d = np.int64 if dtype is None else _dtype_or_default(dtype).numpy
    return _result(random.randperm(n, d, generator), out, requires_grad)


def _like(input, dtype):
    """An empty array of input's shape and layout (torch's preserve_format) in dtype."""
    d = input.dtype if dtype is None else _dtype_or_default(dtype)
    return np.empty_like(input._data, dtype=d.numpy)


@export("rand_like")
def rand_like(input, *, generator=None, dtype=None, layout=None, device=None,
              requires_grad=False, memory_format=None):
    check_device(device)
    return _finish(random.uniform_(_like(input, dtype), 0.0, 1.0, generator), requires_grad)


@export("randn_like")
def randn_like(input, *, generator=None, dtype=None, layout=None, device=None,
               requires_grad=False, memory_format=None):
    check_device(device)
    return _finish(random.normal_(_like(input, dtype), 0.0, 1.0, generator), requires_grad)


@export("randint_like")
def randint_like(input, *args, generator=None, dtype=None, layout=None, device=None,
                 requires_grad=False, memory_format=None, **kwargs):
    """randint_like(input, high) or randint_like(input, low, high): input's shape and dtype."""
    check_device(device)
    low, high, _ = _low_high(args, kwargs, "randint_like")
    return _finish(random.random_(_like(input, dtype), low, high, generator), requires_grad)


@export("normal")
def normal(mean, std=1.0, size=None, *, generator=None, out=None, dtype=None, layout=None,
           device=None, requires_grad=False):
    """Normal samples, as torch.normal: numbers mean and std with a size, or tensors (the
    result takes their broadcast shape and is differentiable in them):
    mean tensor, std number: normal(0, std) + mean;  otherwise normal(0, 1) * std + mean."""
    check_device(device)
    if not isinstance(mean, Tensor) and not isinstance(std, Tensor):
        if size is None:
            raise TypeError("normal() with a number mean and std needs a size")
        array = np.empty(_size((size,), "normal"), _dtype_or_default(dtype).numpy)
        return _result(random.normal_(array, mean, std, generator), out, requires_grad)
    if isinstance(std, Tensor):
        if std._data.size and not (std._data >= 0).all():
            raise RuntimeError("normal expects all elements of std >= 0.0")
        like = mean if isinstance(mean, Tensor) else std
        shape = np.broadcast_shapes(mean._data.shape if isinstance(mean, Tensor) else (),
                                    std._data.shape)
        eps = random.normal_(np.empty(shape, like._data.dtype), 0.0, 1.0, generator)
        return _wrap(eps) * std + mean
    eps = random.normal_(np.empty(mean._data.shape, mean._data.dtype), 0.0, std, generator)
    return _wrap(eps) + mean


# ---------------------------------------------------------------------- sampling

@export("bernoulli", method=True)
def bernoulli(input, p=None, *, generator=None, out=None):
    """1 with probability input (elementwise), else 0, in input's dtype; with a number p, 1 with
    probability p in input's shape. Not differentiable."""
    if p is None:
        array = random.bernoulli(input._data, generator)
    else:
        array = random.bernoulli_(_like(input, None), p, generator)
    return _result(array, out, False)


@export("multinomial", method=True)
def multinomial(input, num_samples, replacement=False, *, generator=None, out=None):
    """Indices sampled from each row of input's weights (1-D or 2-D), int64."""
    return _result(random.multinomial(input._data, num_samples, replacement, generator), out,
                   False)


# ---------------------------------------------------------------------- in place

def _fill(self, draw):
    """Run draw(array) on self's own array (its layout decides torch's drawing order), or,
    when autograd records the write, on a fresh array that then takes self's place."""
    if not (_local.grad_enabled and self._rg):
        draw(self._writable_data())
        return self
    return self._write(_wrap(draw(np.empty_like(self._data))))


@export("uniform_", method=True, function=False)
def uniform_(self, *args, generator=None, **kwargs):
    """Fill with U[from, to) samples (default [0, 1))."""
    low, high = _args(args, kwargs, ("from", "to"), "uniform_")
    low, high = 0.0 if low is None else low, 1.0 if high is None else high
    return _fill(self, lambda a: random.uniform_(a, low, high, generator))


@export("normal_", method=True, function=False)
def normal_(self, mean=0.0, std=1.0, *, generator=None):
    """Fill with N(mean, std**2) samples."""
    return _fill(self, lambda a: random.normal_(a, mean, std, generator))


@export("random_", method=True, function=False)
def random_(self, *args, generator=None, **kwargs):
    """Fill with integers: random_() the dtype's range, random_(to) [0, to),
    random_(from, to) [from, to), to=None meaning up to the dtype's largest."""
    if len(args) == 1 and not kwargs:
        low, high = None, args[0]
    else:
        low, high = _args(args, kwargs, ("from", "to"), "random_")
        if len(args) == 2 or "from" in kwargs:
            low = 0 if low is None else low
    return _fill(self, lambda a: random.random_(a, low, high, generator))


@export("bernoulli_", method=True, function=False)
def bernoulli_(self, p=0.5, *, generator=None):
    """Fill with 1 where u < p, else 0 (p a number or a tensor of probabilities)."""
    p = p._data if isinstance(p, Tensor) else p
    return _fill(self, lambda a: random.bernoulli_(a, p, generator))


@export("exponential_", method=True, function=False)
def exponential_(self, lambd=1.0, *, generator=None):
    """Fill with Exp(lambd) samples."""
    return _fill(self, lambda a: random.exponential_(a, lambd, generator))


# ---------------------------------------------------------------------- seeding

def get_rng_state():
    """The calling thread's generator state: torch's 5056 bytes, as a uint8 tensor."""
    return _wrap(random.get_rng_state())


def set_rng_state(new_state):
    random.set_rng_state(np.asarray(new_state))


registry.FUNCTIONS.update({
    "Generator": random.Generator, "default_generator": random.default_generator,
    "manual_seed": random.manual_seed, "seed": random.seed, "initial_seed": random.initial_seed,
    "get_rng_state": get_rng_state, "set_rng_state": set_rng_state,
})
