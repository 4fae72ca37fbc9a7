"""cygrad's random numbers: PyTorch's CPU generator and its distributions, bit for bit.

A `Generator` is torch's: the 32-bit Mersenne Twister (mt19937) seeded with
init_genrand(seed & 0xffffffff), read 32 bits at a time (`random()`) or 64 (`random64()`: two
draws, the first in the high half), plus the cached second sample of a Box-Muller pair. Its state
bytes are torch's own layout, so `cygrad.get_rng_state()` and `torch.get_rng_state()` hold the
same 5056 bytes after the same calls, and each accepts the other's. Each draw function below
follows torch 2.13's CPU kernel: the same raw numbers, consumed in the same order (the tensor's
memory order), mapped with the same floating-point operations (`_rng_math` has the fused
multiply-adds and the AVX2 float32 Box-Muller). `cygrad.manual_seed(s); cygrad.randn(...)` thus
gives `torch.manual_seed(s); torch.randn(...)`'s bits.

Threads: each thread draws from the process's default generator (shared, behind a lock) until it
calls `manual_seed`; called from the main thread that reseeds the default generator, called from
any other thread it gives that thread a generator of its own, so threads never disturb each
other's streams. `generator()` is the calling thread's.

The draw functions work on numpy arrays: the in-place ones (uniform_, normal_, random_,
bernoulli_, exponential_) fill an array and return it; randint, randperm, bernoulli and
multinomial return new ones.

Where bits can still differ from torch's (all checked against torch 2.13 on x86-64, capability
AVX2; tests/test_random.py holds the rest bitwise):
- float32 normal_ on a contiguous array of >= 16 elements reproduces torch's AVX2 kernel; a torch
  that dispatches another kernel (another CPU capability or architecture) rounds differently.
- float64 log, cos, sin, log1p come from numpy, which calls the C library on such machines; a
  numpy with its own SIMD versions of them (AVX-512 builds) may differ by an ulp now and then.
- randperm for n >= 2**32 / 20 follows torch's source (random64, inside-out) untested: too big.
- multinomial without replacement breaks exact ties of p / q (zero probabilities, when more
  samples than non-zero categories are asked for) by lower index; torch's topk order is its own.
torch's MKL paths for bernoulli_ and exponential_ are not in 2.13's CPU wheels (no VSL random
code in libtorch_cpu; both draw from mt19937 as above).
"""

import contextlib
import math
import secrets
import threading
import warnings

import numpy as np

from . import _rng_math

__all__ = [
    "Generator", "default_generator", "generator", "manual_seed", "seed", "initial_seed",
    "get_rng_state", "set_rng_state", "fork_rng", "uniform_", "normal_", "random_", "randint",
    "randperm", "bernoulli_", "bernoulli", "exponential_", "multinomial", "draw_seed",
]

_DEFAULT_SEED = 67280421310721          # torch's seed for a new Generator()
_N = 624                                # mt19937's state words
_U64 = (1 << 64) - 1

# torch's CPUGeneratorImplState, byte for byte (x86-64 alignment, padding zero)
_STATE = np.dtype({
    "names": ["seed", "left", "seeded", "next", "state", "normal_x", "normal_y", "normal_rho",
              "normal_is_valid", "next_float_normal", "next_float_normal_valid"],
    "formats": ["<u8", "<i4", "<i4", "<u8", ("<u8", _N), "<f8", "<f8", "<f8", "<i4", "<f4", "u1"],
    "offsets": [0, 8, 12, 16, 24, 5016, 5024, 5032, 5040, 5048, 5052],
    "itemsize": 5056,
})


def _seed_value(seed):
    """torch's reading of a seed: int(seed), negative ones wrapped to uint64."""
    seed = int(seed)
    if not -(1 << 63) <= seed <= _U64:
        raise ValueError(f"Overflow when unpacking long long: seed {seed} is outside "
                         f"[-2**63, 2**64 - 1]")
    return seed & _U64


def _init_genrand(seed32):
    """mt19937's initial state: key[0] = seed, key[j] = 1812433253 * (k ^ (k >> 30)) + j."""
    key = [seed32]
    for j in range(1, _N):
        k = key[-1]
        key.append((1812433253 * (k ^ (k >> 30)) + j) & 0xFFFFFFFF)
    return np.array(key, dtype=np.uint32)


class Generator:
    """torch.Generator for the CPU: mt19937 with torch's seeding, state and normal cache."""

    def __init__(self, device="cpu"):
        if str(device) != "cpu":
            raise RuntimeError(f"cygrad has only the 'cpu' device; a Generator for {device!r} "
                               f"cannot be made")
        self._lock = threading.RLock()
        self._bits = np.random.MT19937()
        self.manual_seed(_DEFAULT_SEED)

    @property
    def device(self):
        return "cpu"

    def __repr__(self):
        from . import dtypes

        if dtypes.display_name == "torch":  # under python -m cygrad run: torch's repr
            return f"<torch._C.Generator object at {id(self):#x}>"
        return f"<cygrad.Generator (mt19937) initial_seed={self._seed}>"

    def __reduce__(self):  # pickle and deepcopy carry the state bytes
        return _restored, (self.get_state(),)

    def manual_seed(self, seed):
        """Reset to the stream of `seed` (an int; negative ones wrap to uint64); returns self."""
        seed = _seed_value(seed)
        key = _init_genrand(seed & 0xFFFFFFFF)
        with self._lock:
            self._set_mt(key, _N, fresh=True)
            self._seed = seed
            self._next_double = self._next_float = None
        return self

    def seed(self):
        """Reseed from the operating system's entropy; returns the new seed."""
        value = secrets.randbits(64)
        self.manual_seed(value)
        return value

    def initial_seed(self):
        return self._seed

    def get_state(self):
        """torch's 5056 state bytes (a uint8 array): seed, mt19937 position and words, caches."""
        with self._lock:
            mt = self._bits.state["state"]
            st = np.zeros((), _STATE)
            st["seed"] = self._seed
            pos = int(mt["pos"])
            st["next"], st["left"] = (0, 1) if self._fresh else (pos, _N + 1 - pos)
            st["seeded"] = 1
            st["state"] = mt["key"]
            if self._next_double is not None:
                st["normal_y"], st["normal_is_valid"] = self._next_double, 1
            if self._next_float is not None:
                st["next_float_normal"], st["next_float_normal_valid"] = self._next_float, 1
        return np.frombuffer(st.tobytes(), dtype=np.uint8).copy()

    def set_state(self, new_state):
        """Restore bytes from get_state (cygrad's or torch's); returns self."""
        raw = np.asarray(new_state)
        if raw.dtype != np.uint8:
            raise TypeError(f"RNG state must be a uint8 array (torch.ByteTensor), got {raw.dtype}")
        if raw.size != _STATE.itemsize:
            raise RuntimeError(f"Expected a CPUGeneratorImplState of size {_STATE.itemsize} but "
                               f"found the input RNG state size to be {raw.size}")
        st = np.frombuffer(np.ascontiguousarray(raw).tobytes(), dtype=_STATE)[0]
        left, nxt = int(st["left"]), int(st["next"])
        fresh = nxt == 0 and left == 1
        if not st["seeded"] or not (fresh or (1 <= nxt <= _N and left == _N + 1 - nxt)):
            raise RuntimeError(f"Invalid mt19937 state (left={left}, next={nxt})")
        with self._lock:
            self._set_mt(st["state"].astype(np.uint32), _N if fresh else nxt, fresh)
            self._seed = int(st["seed"])
            self._next_double = float(st["normal_y"]) if st["normal_is_valid"] else None
            self._next_float = (float(st["next_float_normal"])
                                if st["next_float_normal_valid"] else None)
        return self

    # -- raw draws (callers hold self._lock when a draw must not interleave with another)

    def _set_mt(self, key, pos, fresh):
        self._bits.state = {"bit_generator": "MT19937", "state": {"key": key, "pos": pos}}
        self._fresh = fresh

    def _random(self, n):
        """n 32-bit draws (torch's random()), as uint64."""
        with self._lock:
            self._fresh = self._fresh and n == 0
            return self._bits.random_raw(n)

    def _random64(self, n):
        """n 64-bit draws (torch's random64(): two 32-bit draws, the first is the high half)."""
        r = self._random(2 * n)
        return (r[0::2] << np.uint64(32)) | r[1::2]

    def _uniform(self, n, dtype):
        """n uniforms on [0, 1): float32 from 24 bits of random(), float64 from 53 of random64()."""
        if dtype == np.float32:
            return (self._random(n) & np.uint64(0xFFFFFF)).astype(np.float32) * np.float32(2**-24)
        return (self._random64(n) & np.uint64((1 << 53) - 1)).astype(np.float64) * 2.0**-53


def _restored(state):
    return Generator().set_state(state)


# ---------------------------------------------------------------------- the default, per thread

default_generator = Generator()
default_generator.seed()                # as torch: the process starts from a random seed
_local = threading.local()


def generator():
    """The calling thread's generator: its own after it called manual_seed, else the default."""
    return getattr(_local, "generator", None) or default_generator


def _own():
    """The generator a seeding call may change: the default on the main thread, else the thread's
    own (made on first use)."""
    if threading.current_thread() is threading.main_thread():
        return default_generator
    if getattr(_local, "generator", None) is None:
        _local.generator = Generator()
    return _local.generator


def manual_seed(seed):
    """Seed the calling thread's stream (the default generator's on the main thread)."""
    return _own().manual_seed(seed)


def seed():
    """Seed the calling thread's stream from the OS's entropy; returns the seed."""
    return _own().seed()


def initial_seed():
    return generator().initial_seed()


def get_rng_state():
    return generator().get_state()


def set_rng_state(new_state):
    _own().set_state(new_state)


@contextlib.contextmanager
def fork_rng(devices=None, enabled=True, _caller="fork_rng", _devices_kw="devices",
             device_type="cuda"):
    """Run the block, then restore the calling thread's generator state (torch.random.fork_rng;
    there are no other devices to fork)."""
    if not enabled:
        yield
        return
    g = generator()
    state = g.get_state()
    try:
        yield
    finally:
        g.set_state(state)


def _gen(g):
    if g is None:
        return generator()
    if not isinstance(g, Generator):
        raise TypeError(f"generator must be a cygrad.Generator, got {type(g).__name__}")
    return g


# ---------------------------------------------------------------------- helpers

def _check_float(a, what):
    if not isinstance(a, np.ndarray):
        raise TypeError(f"{what} fills a numpy array, got {type(a).__name__}")
    if a.dtype not in (np.float32, np.float64):
        raise NotImplementedError(f'"{what}" not implemented for dtype {a.dtype} '
                                  f"(float32 and float64 are)")


def _order(a):
    """The axis order whose C order is a's memory order (see _fill)."""
    if a.flags.c_contiguous:
        return tuple(range(a.ndim))
    return tuple(sorted(range(a.ndim), key=lambda d: -abs(a.strides[d]) if a.shape[d] > 1 else 0))


def _fill(a, values):
    """Write values (drawn in order) into a in torch's iteration order: memory order, i.e. the
    axes sorted by stride, outermost largest (TensorIterator's order for a written tensor)."""
    a = a.transpose(_order(a))
    a[...] = values.reshape(a.shape)


# ---------------------------------------------------------------------- continuous draws

def uniform_(a, low=0.0, high=1.0, generator=None):
    """a ~ U[low, high) in place: u from the dtype's bits of the stream, a = fma(u, high-low, low)
    with low, high and high-low in a's dtype."""
    _check_float(a, "uniform_")
    info = np.finfo(a.dtype)
    low, high = float(low), float(high)
    for name, v in (("from", low), ("to", high)):
        if not float(info.min) <= v <= float(info.max):
            raise RuntimeError(f"{name} is out of bounds for {a.dtype}")
    if not low <= high:
        raise RuntimeError(f"uniform_ expects to return a [from, to) range, but found "
                           f"from={low} > to={high}")
    if high - low > float(info.max):
        raise RuntimeError(f"uniform_ expects to-from <= max of {a.dtype}, but found to={high} "
                           f"and from={low} which result in to-from to exceed the limit")
    if a.size:
        lo, hi = a.dtype.type(low), a.dtype.type(high)
        u = _gen(generator)._uniform(a.size, a.dtype)
        fma = _rng_math.fma32 if a.dtype == np.float32 else _rng_math.fma64
        _fill(a, _rng_math.chunked(fma, u, a.dtype, hi - lo, lo))
    return a


def _normal_pairs(g, n, mean, std):
    """n samples of normal_distribution<double>: one Box-Muller pair per two samples,
    r = sqrt(-2 log1p(-u2)), theta = 2 pi u1, r cos theta first, r sin theta cached for the next
    sample (across calls); each sample mapped to fma(z, std, mean). float64."""
    z = []
    if g._next_double is not None:
        z.append(np.array([g._next_double]))
        g._next_double = None
    need = n - len(z)
    if need:
        u = g._uniform(2 * ((need + 1) // 2), np.float64)
        r = np.sqrt(-2.0 * _rng_math.libm(math.log1p, -u[1::2]))
        theta = (2.0 * np.pi) * u[0::2]
        pairs = np.stack([r * _rng_math.libm(math.cos, theta),
                          r * _rng_math.libm(math.sin, theta)], axis=1).reshape(-1)
        if need % 2:
            g._next_double = float(pairs[-1])
            pairs = pairs[:-1]
        z.append(pairs)
    return _rng_math.fma64(np.concatenate(z), std, mean)


def normal_(a, mean=0.0, std=1.0, generator=None):
    """a ~ N(mean, std**2) in place, as torch's CPU normal_.

    A contiguous array of >= 16 elements: fill with uniforms, then Box-Muller on each block of 16
    (u[:8] gives the radii, u[8:] the angles); a last partial block is recomputed from 16 fresh
    uniforms over the array's last 16 elements. float32 uses torch's AVX2 polynomials, float64
    libm. Otherwise: one sample at a time from normal_distribution<double> (see _normal_pairs),
    rounded to a's dtype.
    """
    _check_float(a, "normal_kernel_cpu")
    mean, std = float(mean), float(std)
    if not std >= 0.0:
        raise RuntimeError(f"normal expects std >= 0.0, but found std {std}")
    if a.size == 0:
        return a
    g = _gen(generator)
    with g._lock:
        if a.size >= 16 and a.flags.c_contiguous:
            a[...] = _normal_fill(g, a.size, mean, std, a.dtype).reshape(a.shape)
        else:
            _fill(a, _normal_pairs(g, a.size, mean, std).astype(a.dtype))
    return a


def _normal_fill(g, n, mean, std, dtype):
    box_muller = (_rng_math.box_muller16_avx2 if dtype == np.float32
                  else _rng_math.box_muller16_f64)
    u = g._uniform(n, dtype)
    whole = n // 16 * 16
    out = np.empty(n, dtype)
    out[:whole] = _rng_math.chunked(box_muller, u[:whole].reshape(-1, 16), dtype, mean,
                                    std).reshape(-1)
    if n % 16:
        out[n - 16:] = box_muller(g._uniform(16, dtype).reshape(1, 16), mean, std).reshape(-1)
    return out


def exponential_(a, lambd=1.0, generator=None):
    """a ~ Exp(lambd) in place: u from random64's 53 bits, a = (-1 / lambd) * log1p(-u) in double,
    rounded to a's dtype."""
    if isinstance(a, np.ndarray) and a.dtype.kind in "iub":
        raise RuntimeError(f"Exponential distribution is a continuous probability distribution. "
                           f"dtype must be a floating point but you specified {a.dtype}")
    _check_float(a, "exponential_")
    lambd = float(lambd)
    if not lambd > 0.0:
        raise RuntimeError(f"exponential_ expects lambda > 0.0, but found lambda={lambd}")
    if a.size:
        u = _gen(generator)._uniform(a.size, np.float64)
        _fill(a, ((-1.0 / lambd) * _rng_math.libm(math.log1p, -u)).astype(a.dtype))
    return a


# ---------------------------------------------------------------------- integers

_INT64_MIN = -(1 << 63)


def _digits(dtype):
    """Mantissa bits of a float dtype, counting the implicit one (torch: numeric_limits::digits)."""
    return np.finfo(dtype).nmant + 1


def _check_random_dtype(a):
    if not isinstance(a, np.ndarray):
        raise TypeError(f"random_ fills a numpy array, got {type(a).__name__}")
    if a.dtype.kind not in "fiub" or a.dtype in (np.uint64, np.longdouble):
        raise NotImplementedError(f'"random_" not implemented for dtype {a.dtype}')


def _update_from(frm, dtype):
    """torch's update_from: the smallest from whose cast to dtype is not below from."""
    from_plus_1 = int(dtype.type(frm + 1))
    if from_plus_1 < frm:
        n = max(abs(frm + 1).bit_length() - 1, 0)
        frm = from_plus_1 + (1 << (n - _digits(dtype) + 1))
    return frm


def _update_to(to, dtype):
    """torch's update_to: the largest to whose cast to dtype stays below to."""
    to_minus_1 = int(dtype.type(to - 1))
    if to_minus_1 >= to:
        n = max(abs(to - 1).bit_length() - 1, 0)
        to = to_minus_1 - (1 << (n - _digits(dtype) + 1))
    return to


def _check_in_range(frm, to_inc, dtype):
    if dtype.kind == "f":
        low, high = float(np.finfo(dtype).min), float(np.finfo(dtype).max)
    elif dtype == np.bool_:
        low, high = 0, 1
    else:
        low, high = int(np.iinfo(dtype).min), int(np.iinfo(dtype).max)
    for name, v in (("from", frm), ("to - 1", to_inc)):
        if not low <= v <= high:
            raise RuntimeError(f"{name} is out of bounds for {dtype}")
    if dtype.kind == "f":
        digits = _digits(dtype)
        for name, v in (("from", frm), ("to - 1", to_inc)):
            if not -(1 << digits) <= v <= 1 << digits:
                warnings.warn(f"{name} is out of bounds [-(2^{digits}), 2^{digits}]. Due to "
                              f"precision limitations {dtype} can support discrete uniform "
                              f"distribution only within this range.", UserWarning, stacklevel=3)


def _from_to(a, span, base, g):
    """a := (raw % span) + base in uint64 arithmetic, cast to int64 and then to a's dtype; raw
    is random64() where span >= 2**28 (torch's public builds; any dtype), else random()."""
    wide = span >= 1 << 28
    raw = g._random64(a.size) if wide else g._random(a.size)
    values = (raw % np.uint64(span) + np.uint64(base & _U64)).astype(np.int64)
    _fill(a, values.astype(a.dtype))


def _random_full(a, g):
    """a := random64() reinterpreted as int64 (from = int64 min, to = None)."""
    if a.dtype not in (np.int64, np.float32, np.float64):
        raise RuntimeError("random_full_64_bits_range_kernel_cpu handles only int64, double, "
                           "float and bfloat16")
    _fill(a, g._random64(a.size).astype(np.int64).astype(a.dtype))


def _random_default(a, g):
    """random_() with no bounds: [0, 2**63) for int64, [0, max] for other integers, [0, 2**d]
    for a float with d mantissa digits, {0, 1} for bool (the low bit)."""
    if a.dtype == np.bool_:
        _fill(a, (g._random(a.size) & np.uint64(1)).astype(np.bool_))
        return
    if a.dtype.kind == "f":
        span = (1 << _digits(a.dtype)) + 1
    else:
        span = int(np.iinfo(a.dtype).max) + 1
    raw = g._random64(a.size) if a.dtype in (np.int64, np.float64) else g._random(a.size)
    _fill(a, (raw % np.uint64(span)).astype(a.dtype))


def random_(a, low=None, high=None, generator=None):
    """Uniform integers in place, as torch's Tensor.random_.

    random_(a): the dtype's default range (see _random_default); random_(a, high=h): [0, h);
    random_(a, l): [l, dtype max] (the whole int64 range for l = -2**63); random_(a, l, h):
    [l, h). For floats the bounds move inward to values the dtype holds.
    """
    _check_random_dtype(a)
    g = _gen(generator)
    if low is None and high is None:
        if a.size:
            _random_default(a, g)
        return a
    frm = 0 if low is None else int(low)
    dtype = a.dtype
    if high is not None:
        to = int(high)
        if not frm < to:
            raise RuntimeError(f"random_ expects 'from' to be less than 'to', but got "
                               f"from={frm} >= to={to}")
        if dtype.kind == "f":
            frm, to = _update_from(frm, dtype), _update_to(to, dtype)
            if not frm < to:
                raise RuntimeError(f"random_ expects 'from' casted to dtype to be less than "
                                   f"'to' casted to dtype, but got from={frm} >= to={to}")
        _check_in_range(frm, to - 1, dtype)
        if a.size:
            _from_to(a, (to - frm) & _U64, frm, g)
    elif frm != _INT64_MIN:
        if dtype.kind == "f":
            to_inc = min(1 << _digits(dtype), (1 << 63) - 1)
            frm = _update_from(frm, dtype)
            if not frm < to_inc:
                raise RuntimeError(f"random_ expects 'from' casted to dtype to be less than or "
                                   f"equal to 'to_inc' casted to dtype, but got from={frm} > "
                                   f"to_inc={to_inc}")
        else:
            to_inc = 1 if dtype == np.bool_ else int(np.iinfo(dtype).max)
        _check_in_range(frm, to_inc, dtype)
        if a.size:
            _from_to(a, (to_inc - frm + 1) & _U64, frm, g)
    elif a.size:
        _random_full(a, g)
    return a


def randint(low, high, shape, dtype=np.int64, generator=None):
    """A new array of integers uniform on [low, high) (torch.randint)."""
    return random_(np.empty(shape, dtype=dtype), low, high, generator=generator)


def draw_seed(generator=None):
    """A seed drawn from the stream as torch's DataLoader does:
    int(torch.empty((), dtype=torch.int64).random_().item()), i.e. random64() % 2**63."""
    return int(random_(np.empty((), np.int64), generator=generator))


_SMALL_PERM = 0xFFFFFFFF // 20          # below this torch keeps its 32-bit Fisher-Yates


def randperm(n, dtype=np.int64, generator=None):
    """A random permutation of range(n), as torch.randperm on the CPU.

    n < 2**32 / 20: for i in 0..n-2, swap p[i] and p[i + random() % (n - i)].
    Larger n: the inside-out variant with random64() % (i + 1).
    """
    n = int(n)
    dtype = np.dtype(dtype)
    if n < 0:
        raise RuntimeError(f"Trying to create tensor with negative dimension {n}: [{n}]")
    if dtype.kind == "f":
        if n > (1 << _digits(dtype)) + 1:
            raise RuntimeError(f"n cannot be greater than 2^{_digits(dtype)}+1 for {dtype} type.")
    elif dtype.kind in "iu":
        if n - 1 > np.iinfo(dtype).max:
            raise RuntimeError(f"value cannot be converted to type {dtype} without overflow")
    else:
        raise NotImplementedError(f'"randperm" not implemented for dtype {dtype}')
    g = _gen(generator)
    if n < _SMALL_PERM:
        steps = (g._random(max(n - 1, 0)) % (np.uint64(n) - np.arange(max(n - 1, 0),
                                                                       dtype=np.uint64)))
        perm = list(range(n))
        for i, z in enumerate(steps.tolist()):
            j = i + z
            perm[i], perm[j] = perm[j], perm[i]
    else:
        picks = (g._random64(n) % np.arange(1, n + 1, dtype=np.uint64)).tolist()
        perm = [0] * n
        for i, z in enumerate(picks):
            perm[i] = perm[z]
            perm[z] = i
    return np.array(perm, dtype=dtype)


# ---------------------------------------------------------------------- Bernoulli, multinomial

def bernoulli_(a, p=0.5, generator=None):
    """a := 1 where u < p else 0, elementwise, in place (torch's Tensor.bernoulli_).

    A number p (in [0, 1]) or a float64 array p: u from random64's 53 bits; a float32 array p:
    u from 24 bits of random(), compared in float32. An array p broadcasts to a's shape.
    """
    if not isinstance(a, np.ndarray) or a.dtype.kind not in "fiub":
        raise TypeError(f"bernoulli_ fills a numeric numpy array, got {type(a).__name__}")
    g = _gen(generator)
    if isinstance(p, (np.ndarray, list, tuple)):  # a tensor of probabilities, even 0-d
        p = np.asarray(p)
        if p.dtype not in (np.float32, np.float64):
            raise NotImplementedError(f'"bernoulli_tensor_cpu_p_" not implemented for {p.dtype}')
        if not ((p >= 0) & (p <= 1)).all():
            raise RuntimeError("bernoulli expects all elements of p to be in [0, 1]")
        if a.size:
            with g._lock:
                order = _order(a)
                p_in_order = np.broadcast_to(p, a.shape).transpose(order).reshape(-1)
                u = g._uniform(a.size, p.dtype)
                a.transpose(order)[...] = (u < p_in_order).astype(a.dtype).reshape(
                    a.transpose(order).shape)
        return a
    p = float(p)
    if not 0 <= p <= 1:
        raise RuntimeError(f"bernoulli_ expects p to be in [0, 1], but got p={p}")
    if a.size:
        _fill(a, (g._uniform(a.size, np.float64) < p).astype(a.dtype))
    return a


def dropout_mask(x, p, generator=None):
    """(x * scale, scale) with scale = bernoulli_(1 - p) / (1 - p) in x's dtype, drawn as
    torch's CPU dropout draws it (x C-contiguous float, 0 <= p < 1): one kernel pass."""
    from . import backend

    g = _gen(generator)
    keep = 1.0 - float(p)
    kept = float(x.dtype.type(1) / x.dtype.type(keep))
    with g._lock:
        g._fresh = g._fresh and x.size == 0
        return backend.dropout(g._bits, x, keep, kept)


def bernoulli(p, generator=None):
    """A new array of p's dtype and layout: 1 with probability p, elementwise (torch.bernoulli)."""
    p = np.asarray(p)
    if p.dtype not in (np.float32, np.float64):
        raise NotImplementedError(f'"bernoulli" not implemented for {p.dtype}')
    out = np.empty_like(p)
    if out.ndim == 0:
        return bernoulli_(out.reshape(1), p.reshape(1), generator).reshape(())
    return bernoulli_(out, p, generator)


def multinomial(probs, num_samples, replacement=False, generator=None):
    """Indices drawn from the rows of probs (1-D or 2-D, non-negative, not all zero), as
    torch.multinomial: int64, shape (num_samples,) or (rows, num_samples).

    Without replacement, or for one sample: q ~ Exp(1) like probs, then the indices of the
    num_samples largest probs / q (Gumbel-max). With replacement: per row, the normalised
    cumulative sum in probs' dtype (last entry set to 1), and for each sample the first index
    whose cumulative probability reaches u (a random64 uniform).
    """
    probs = np.asarray(probs)
    num_samples = int(num_samples)
    if not 1 <= probs.ndim <= 2:
        raise RuntimeError(f"prob_dist must be 1 or 2 dim, got shape {probs.shape}")
    if probs.dtype not in (np.float32, np.float64):
        raise RuntimeError(f"multinomial only supports floating-point dtypes for input, "
                           f"got: {probs.dtype}")
    if num_samples <= 0:
        raise RuntimeError("cannot sample n_sample <= 0 samples")
    n_categories = probs.shape[-1]
    if not replacement and num_samples > n_categories:
        raise RuntimeError(f"cannot sample n_sample > prob_dist.size(-1) samples without "
                           f"replacement (n_sample={num_samples}, size={n_categories})")
    if n_categories > 1 << 24:
        raise RuntimeError("number of categories cannot exceed 2^24")
    shape = probs.shape[:-1] + (num_samples,)
    if np.prod(shape) == 0:
        return np.empty(shape, np.int64)
    g = _gen(generator)
    if not replacement or num_samples == 1:
        if not (probs.max() < np.inf and probs.min() >= 0):
            raise RuntimeError("probability tensor contains either `inf`, `nan` or element < 0")
        if (probs == 0).all(axis=-1).any():
            raise RuntimeError("invalid multinomial distribution (sum of probabilities <= 0)")
        q = exponential_(_like(probs), 1.0, generator=g)
        q = probs / q
        if num_samples == 1:
            return np.argmax(q, axis=-1, keepdims=True).astype(np.int64)
        return np.argsort(-q, axis=-1, kind="stable")[..., :num_samples].astype(np.int64)
    rows = probs.reshape(-1, n_categories)
    out = np.empty((len(rows), num_samples), np.int64)
    with g._lock:
        for i, row in enumerate(rows):
            if not (row >= 0).all():
                raise RuntimeError("invalid multinomial distribution (encountering probability "
                                   "entry < 0)")
            if not np.isfinite(row).all():
                raise RuntimeError("invalid multinomial distribution (encountering probability "
                                   "entry = infinity or NaN)")
            cum = np.cumsum(row, dtype=row.dtype)
            if not cum[-1] > 0:
                raise RuntimeError("invalid multinomial distribution (sum of probabilities <= 0)")
            cum = cum / cum[-1]
            cum[-1] = 1
            out[i] = np.searchsorted(cum, g._uniform(num_samples, np.float64), side="left")
    return out.reshape(shape)


def _like(a):
    """An empty array shaped like a, laid out as torch's empty_like: a's layout when it is dense
    (some axis order is C-contiguous), else C order."""
    order = _order(a)
    t = a.transpose(order)
    if t.flags.c_contiguous:
        return np.empty(t.shape, a.dtype).transpose(np.argsort(order))
    return np.empty(a.shape, a.dtype)
