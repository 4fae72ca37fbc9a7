"""The kernel seam: every numeric kernel cygrad runs goes through here.

Two backends implement one contract (csrc/README.md has the table):
  "cython" (default)  exact kernels: every output element runs the same floating-point operations
  "numpy"             the twin in plain numpy (matmul through BLAS): spec, oracle, baseline

    cygrad.backend.use("numpy")
    with cygrad.backend.using("numpy"): ...

The backend and the kernel thread count are per thread, as PyTorch's modes are: a thread starts
from the process defaults; `use(name)` and `set_num_threads(n)` called from the main thread set
those defaults (what every thread that has not chosen for itself sees), called from any other
thread they choose for that thread only; `using(name)` changes the calling thread only and
restores exactly its previous state. (The state lives in context variables, so an asyncio task
started inside `using` keeps its choice too.)

Inputs are validated here, once, before either backend sees them; nothing above this package
imports a compiled module.
"""

import contextlib
import contextvars
import operator
import os
import threading

import numpy as np

from . import numpy_backend

__all__ = [
    "use", "current", "using", "available", "set_num_threads", "get_num_threads",
    "has_kernel", "gemm", "activation_forward", "activation_backward", "bias_add",
    "bias_activation", "activation_backward_bias", "column_sum", "row_sum", "sum", "channel_sum",
    "sum_to_shape", "log_softmax_nll", "log_softmax_nll_backward", "im2col", "col2im",
    "im2col_t", "col2im_t", "planes_to_images", "gemm_into", "add_channel_bias", "conv_image",
    "conv_image_grad", "conv_image_backward", "max_pool",
    "max_pool_backward", "avg_pool", "avg_pool_backward", "sgd_update", "adam_update",
    "rmsprop_update", "adagrad_update", "adadelta_update", "adamax_update", "nadam_update",
    "radam_update", "rprop_update", "asgd_update",
    "batched_gemm", "embedding_backward", "softmax_rows", "softmax_rows_backward", "dropout",
    "layer_norm", "layer_norm_backward", "mse",
]

FLOAT_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))

# How OpenMP's idle threads wait between parallel regions (both read when OpenMP first loads;
# set them yourself to choose otherwise). GNU OpenMP's default busy-waits about 3 ms after each
# region: on a machine shared with other work that made two threads 4-10x slower than one. But
# a thread that sleeps at once (OMP_WAIT_POLICY=PASSIVE alone) must be woken for the next region,
# and on some VMs that costs 100-200 us: a 12.8M multiply-add product on two threads after a
# 0.3 ms pause took 1.09x its one-thread time, and the MNIST-size step's two threads gained
# nothing. So GNU OpenMP's threads spin a bounded while (30000 turns, ~0.3 ms: the gaps between
# a training step's parallel kernels), then sleep: that product 0.62x, the step 0.70-0.72x
# (benchmarks/README.md). Other OpenMP runtimes ignore GOMP_SPINCOUNT and sleep at once.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
os.environ.setdefault("GOMP_SPINCOUNT", "30000")


def _tune_malloc():
    """Keep a training step's arrays in the heap (glibc only; CYGRAD_MALLOC_TUNING=0 opts out).

    glibc serves allocations above 128 kB (adjusting upwards as it goes) by mmap, and returns
    free memory above the heap's top to the system once it exceeds twice that: a step that
    allocates and frees a few hundred-kB arrays then page-faults them back in every step, which
    doubled the time of the conv benchmark (210 faults a step, 850 µs against 410 µs), and the
    mnist CNN's 1-10 MB activations cost it ~6000 faults a step. Arrays up to 32 MB (glibc's
    largest threshold) now come from the heap, and up to 128 MB of freed heap is kept for
    reuse: the process keeps the memory of its largest step, as a framework's caching
    allocator does (the CNN step: 156-173 -> 118-136 ms here, medians of two runs each).
    Variables MALLOC_MMAP_THRESHOLD_ / MALLOC_TRIM_THRESHOLD_ set by the user win."""
    if os.environ.get("CYGRAD_MALLOC_TUNING", "1") == "0" or not hasattr(os, "confstr"):
        return
    if "MALLOC_MMAP_THRESHOLD_" in os.environ or "MALLOC_TRIM_THRESHOLD_" in os.environ:
        return
    try:
        if not os.confstr("CS_GNU_LIBC_VERSION").startswith("glibc"):
            return
        import ctypes

        libc = ctypes.CDLL(None)
        m_trim_threshold, m_mmap_threshold = -1, -3  # <malloc.h>
        libc.mallopt(m_mmap_threshold, 32 << 20)
        libc.mallopt(m_trim_threshold, 128 << 20)
    except (OSError, ValueError, AttributeError):
        pass


_tune_malloc()

_backends = {"numpy": numpy_backend}
try:
    from . import cython_backend

    _backends["cython"] = cython_backend
    _impl = cython_backend
except ImportError as exc:  # an uncompiled source tree: say so loudly, but stay importable
    _cython_error = exc
    _impl = numpy_backend
    import warnings

    warnings.warn(f"cygrad's compiled kernels failed to import ({exc.name or 'cygrad._C'}: "
                  f"{exc}): running on the numpy backend, without the exactness promise. "
                  "Build them with `pip install .`; `python -m cygrad config` shows the build.",
                  RuntimeWarning, stacklevel=2)


def _cpus():
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


# The kernels use at most this many threads, whatever is asked (csrc/threads.h caps them the
# same way): more threads than CPUs only cost the time to wake them, and tens of thousands made
# GNU OpenMP crash. At least 2, so that the parallel paths run (and are tested) on one CPU.
_THREAD_CAP = min(max(2, _cpus()), 1024)

def _threads_from_environment():
    """Like PyTorch: OMP_NUM_THREADS (torch's intra-op threads are OpenMP's: its first number)
    if set to a positive count, at most one a core as torch takes it, else every core;
    CYGRAD_NUM_THREADS overrides both."""
    cores = os.cpu_count() or 1
    for name, cap in (("CYGRAD_NUM_THREADS", None), ("OMP_NUM_THREADS", cores)):
        value = os.environ.get(name, "").split(",")[0].strip()
        if value.isdigit() and int(value) > 0:
            return min(int(value), cap or int(value))
    return cores


_num_threads = _threads_from_environment()
_kernel_threads = min(_num_threads, _THREAD_CAP)  # what the kernels are handed

# A thread's own choices, when it made one (unset: the process defaults above). Reading them is
# on every op's path: ContextVar.get with the default as argument, ~30 ns (a threading.local
# subclass read cost ~90 ns here).
_impl_var = contextvars.ContextVar("cygrad_backend")
_threads_var = contextvars.ContextVar("cygrad_kernel_threads")
_requested_var = contextvars.ContextVar("cygrad_num_threads")


def _main_thread():
    return threading.current_thread() is threading.main_thread()


def _after_fork_in_child():
    """A forked child runs its kernels on one thread: GNU OpenMP's pool does not survive fork
    (the child's next parallel region would wait forever for threads that are gone). The
    kernels enforce it themselves (csrc/threads.h); this makes get_num_threads() say so."""
    global _num_threads, _kernel_threads
    _num_threads = _kernel_threads = 1
    if _threads_var.get(None) is not None:
        _threads_var.set(1)
        _requested_var.set(1)


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


# The compiled graph locks (csrc/graph.pyx), or None: cygrad.ops then uses its Python ones.
# Not switched by use(): a process keeps one registry of locked arrays.
compiled_lease = getattr(_backends.get("cython"), "Lease", None)

# The compiled all_differ (csrc/symmetry.pyx), or None. Comparisons, no arithmetic: like the
# locks, not switched by use() (numpy_backend.all_differ is its spec and fallback).
compiled_all_differ = getattr(_backends.get("cython"), "_all_differ", None)


def available():
    """Names of the backends this install can run."""
    return tuple(_backends)


def _backend(name):
    if name not in ("cython", "numpy"):
        raise ValueError(f"unknown backend {name!r}: choose 'cython' or 'numpy'")
    if name not in _backends:
        raise RuntimeError(f"the cython backend is not built ({_cython_error}); "
                           "reinstall with `pip install .`")
    return _backends[name]


def use(name):
    """Switch later ops to backend `name` ("cython" or "numpy"): from the main thread, the
    process default (and the main thread's own choice); from another thread, that thread's."""
    global _impl
    impl = _backend(name)
    if _main_thread():
        _impl = impl
        if _impl_var.get(None) is None:
            return
    _impl_var.set(impl)


# The compiled backend, or None. Its kernels check every operand themselves (they cannot
# trust checks made before they release the GIL), so the hot wrappers below call them without
# checking first, and restate a refusal in cygrad's words.
_compiled = _backends.get("cython")


def _here():
    """The calling thread's backend module."""
    return _impl_var.get(_impl)


def current():
    """Name of the backend the calling thread uses."""
    return "cython" if _impl_var.get(_impl) is _backends.get("cython") else "numpy"


@contextlib.contextmanager
def using(name):
    """`with using("numpy"): ...` runs the block on another backend, in this thread only, then
    restores this thread's previous state."""
    token = _impl_var.set(_backend(name))
    try:
        yield
    finally:
        _restore(_impl_var, token)


def _restore(var, token):
    try:
        var.reset(token)
    except ValueError:  # exited in another context than it was entered (a generator moved
        old = token.old_value  # between tasks): restore the value itself
        var.set(_impl if old is contextvars.Token.MISSING else old)


def set_num_threads(n):
    """Threads the Cython kernels may use (results are bitwise the same for every n): from the
    main thread, the process default (and the main thread's own choice); from another thread,
    that thread's. Kernels use at most max(2, CPUs available) whatever is asked, and one in a
    forked child."""
    global _num_threads, _kernel_threads
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)):
        if not (isinstance(n, float) and n.is_integer()):
            raise ValueError(f"number of threads must be a positive integer, got {n!r}")
    if n < 1:
        raise ValueError(f"number of threads must be a positive integer, got {n!r}")
    n = int(n)
    kernel = min(n, _THREAD_CAP)
    if _main_thread():
        _num_threads, _kernel_threads = n, kernel
        if _threads_var.get(None) is None:
            return
    _threads_var.set(kernel)
    _requested_var.set(n)


def get_num_threads():
    """The thread count set for the calling thread (or the process default)."""
    return _requested_var.get(_num_threads)


# ---------------------------------------------------------------- validation (shared by both)
# Each check below starts with a cheap test of the common case (a few attribute reads, inside a
# try: free unless it fails) and only builds an error message when that fails: they run on
# every op, so they must cost little.

def _not_arrays(fn, **arguments):
    """Raise TypeError naming the first argument that is not a numpy array."""
    for name, value in arguments.items():
        if not isinstance(value, np.ndarray):
            raise TypeError(f"{fn}: argument {name!r} must be a numpy array, got "
                            f"{type(value).__name__}")


def _float_input(fn, **arguments):
    """Each argument a numpy array (a TypeError naming it otherwise) of float32 or float64."""
    _not_arrays(fn, **arguments)
    _check_float(fn, *arguments.values())


def _check_float(name, *arrays):
    for a in arrays:
        if a.dtype not in FLOAT_DTYPES:
            raise TypeError(f"{name}: unsupported dtype {a.dtype}; cygrad computes in float32 "
                            "or float64")
    dtypes = {a.dtype for a in arrays}
    if len(dtypes) > 1:
        raise TypeError(f"{name}: mixed dtypes {' and '.join(sorted(map(str, dtypes)))}; "
                        "convert one operand first")


class NoKernel(ValueError):
    """The backend in use has no elementwise kernel of that name (the numpy backend has none):
    the ops catch it and run the op table's math instead."""


def _check_activation(name):
    kernels = _impl_var.get(_impl).KERNELS
    if name not in kernels:
        raise NoKernel(f"unknown elementwise kernel {name!r} on the {current()} backend; it "
                         f"has {sorted(kernels)}")


def _check_same_shape(name, a, b):
    if a.shape != b.shape:
        raise ValueError(f"{name} backward: gradient shape {a.shape} != {b.shape}")


def _check_bias(name, x, b):
    if len(x.shape) != 2 or len(b.shape) != 1 or x.shape[1] != b.shape[0]:
        raise ValueError(f"{name}: shapes {x.shape} and {b.shape} do not match")


# ---------------------------------------------------------------- the contract
# Each function reads the calling thread's backend and thread count once:
#   _impl_var.get(_impl), _threads_var.get(_kernel_threads)

def has_kernel(name, array):
    """Whether the backend in use has the elementwise kernel `name` for array's dtype (the
    cython backend, float32 and float64). Ops run their numpy twin otherwise: the op table
    (cygrad/ops/elementwise.py) states each elementwise op's math once, for both."""
    return name in _impl_var.get(_impl).KERNELS and array.dtype in FLOAT_DTYPES


def gemm(a, b, trans_a=False, trans_b=False):
    """C := op(A) @ op(B), op(X) = X.T when trans_x. a, b 2-D, one float dtype."""
    impl = _impl_var.get(_impl)
    if impl is _compiled:  # the kernel checks its operands itself; its refusals restated
        try:
            return impl.gemm(a, b, trans_a, trans_b, _threads_var.get(_kernel_threads))
        except (TypeError, ValueError):
            _gemm_refused(a, b, trans_a, trans_b)
            raise
    try:
        if a.dtype is not b.dtype or a.dtype not in FLOAT_DTYPES or a.ndim != 2 or b.ndim != 2:
            _check_gemm(a, b, trans_a, trans_b)  # raises, unless dtypes are merely equal objects
    except AttributeError:
        _not_arrays("gemm", a=a, b=b)
        raise
    try:
        return _impl_var.get(_impl).gemm(a, b, trans_a, trans_b, _threads_var.get(_kernel_threads))
    except ValueError:  # inner sizes that differ (both backends check before computing)
        _check_gemm(a, b, trans_a, trans_b)  # the error in cygrad's words
        raise


def _gemm_refused(a, b, trans_a, trans_b):
    """Raise gemm's refusal of a, b in cygrad's words, if it has one."""
    try:
        _check_gemm(a, b, trans_a, trans_b)
    except AttributeError:
        _not_arrays("gemm", a=a, b=b)
        raise


def _check_gemm(a, b, trans_a, trans_b):
    _check_float("gemm", a, b)
    if a.ndim != 2 or b.ndim != 2:
        raise ValueError(f"gemm needs 2-D operands, got shapes {a.shape} and {b.shape}")
    k_a, k_b = a.shape[0 if trans_a else 1], b.shape[1 if trans_b else 0]
    if k_a != k_b:
        sa = f"{a.shape}{'.T' if trans_a else ''}"
        sb = f"{b.shape}{'.T' if trans_b else ''}"
        raise ValueError(f"matmul: shapes {sa} and {sb} do not multiply ({k_a} != {k_b})")


def activation_forward(name, x, slope=0.01):
    """y = act(x) by the elementwise kernel `name` (see has_kernel; the op table has the
    math): tanh, sigmoid, relu (NaN kept), leaky_relu(slope)."""
    impl = _impl_var.get(_impl)
    if name not in impl.KERNELS:
        _check_activation(name)
    try:
        if x.dtype not in FLOAT_DTYPES:
            _check_float(name, x)
    except AttributeError:
        _not_arrays(name, x=x)
        raise
    return impl.activation_forward(name, x, slope, _threads_var.get(_kernel_threads))


def activation_backward(name, grad, saved, slope=0.01):
    """dx from the output gradient and what the op saved (the op table's `saves`: y for tanh,
    sigmoid and relu — y > 0 exactly when x > 0 —, x for leaky_relu). relu passes the gradient
    where saved is NaN, as torch's threshold_backward does."""
    impl = _impl_var.get(_impl)
    if name not in impl.KERNELS:
        _check_activation(name)
    try:
        if grad.dtype is not saved.dtype or grad.dtype not in FLOAT_DTYPES:
            _check_float(name, grad, saved)
        _check_same_shape(name, grad, saved)
    except AttributeError:
        _not_arrays(f"{name} backward", grad=grad, saved=saved)
        raise
    return impl.activation_backward(name, grad, saved, slope, _threads_var.get(_kernel_threads))


def bias_add(x, b, out=None):
    """Y := X + b, X (n, m), b (m,); into `out` when given (an array of x's shape and dtype; it
    may be x, in place, or overlap x or b: the result is that of np.add)."""
    try:
        dtype, xs, bs = x.dtype, x.shape, b.shape
        if (b.dtype is not dtype or dtype not in FLOAT_DTYPES or len(xs) != 2 or len(bs) != 1
                or xs[1] != bs[0]):  # the common case in one test
            _check_float("bias_add", x, b)
            _check_bias("bias_add", x, b)
        if out is not None and out is not x:
            if out.shape != xs or out.dtype != dtype:
                raise ValueError(f"bias_add: out of shape {out.shape} and dtype {out.dtype} for "
                                 f"x of shape {x.shape} and dtype {x.dtype}")
            flags = out.flags
            if not (flags.c_contiguous and flags.aligned and flags.writeable):
                out[...] = bias_add(x, b)  # numpy's copy raises for a read-only out
                return out
    except AttributeError:
        _not_arrays("bias_add", x=x, b=b, **({} if out is None else {"out": out}))
        raise
    return _impl_var.get(_impl).bias_add(x, b, out, _threads_var.get(_kernel_threads))


def bias_activation(name, z, b, slope=0.01):
    """The fused forward of a dense layer: Z := Z + b in place, returns Y = act(Z), one pass
    over each row. Z (n, m) writable and C-contiguous (a fresh gemm output), b (m,).
    Bits: Z those of bias_add, Y those of activation_forward(name, Z)."""
    impl = _impl_var.get(_impl)
    if impl is _compiled:
        try:
            return impl.bias_activation(name, z, b, slope, _threads_var.get(_kernel_threads))
        except (TypeError, ValueError):
            _bias_activation_refused(name, z, b)
            raise
    _bias_activation_refused(name, z, b)
    return impl.bias_activation(name, z, b, slope, _threads_var.get(_kernel_threads))


def _bias_activation_refused(name, z, b):
    try:
        _check_activation(name)  # (NoKernel on the numpy backend: it has none)
        _check_float(name, z, b)
        _check_bias("bias_activation", z, b)  # the kernel refuses a read-only or strided z
    except AttributeError:
        _not_arrays("bias_activation", z=z, b=b)
        raise


def activation_backward_bias(name, grad, saved, slope=0.01):
    """The fused backward of a dense layer's bias and activation: (dz, db) with dz what
    activation_backward gives (saved: y for tanh, sigmoid and relu, x for leaky_relu) and
    db = column_sum(dz), both bitwise. grad, saved (n, m)."""
    impl = _impl_var.get(_impl)
    if impl is _compiled:
        try:
            return impl.activation_backward_bias(name, grad, saved, slope,
                                                 _threads_var.get(_kernel_threads))
        except (TypeError, ValueError):
            _backward_bias_refused(name, grad, saved)
            raise
    _backward_bias_refused(name, grad, saved)
    return impl.activation_backward_bias(name, grad, saved, slope,
                                         _threads_var.get(_kernel_threads))


def _backward_bias_refused(name, grad, saved):
    try:
        _check_activation(name)  # (NoKernel on the numpy backend: it has none)
        _check_float(name, grad, saved)
        _check_same_shape(name, grad, saved)
        if grad.ndim != 2:
            raise ValueError(f"{name} backward with bias: 2-D gradient expected, got "
                             f"{grad.shape}")
    except AttributeError:
        _not_arrays(f"{name} backward with bias", grad=grad, saved=saved)
        raise


def column_sum(g):
    """s[j] := sum_i g[i, j], by the kernels' fixed tree over i (csrc/sums.h): the bias
    gradient."""
    impl = _impl_var.get(_impl)
    if impl is _compiled:
        try:
            return impl.column_sum(g, _threads_var.get(_kernel_threads))
        except (TypeError, ValueError):
            _matrix_refused("column_sum", g)
            raise
    _matrix_refused("column_sum", g)
    return impl.column_sum(g, _threads_var.get(_kernel_threads))


def _matrix_refused(name, g):
    try:
        if g.dtype not in FLOAT_DTYPES:
            _check_float(name, g)
        if g.ndim != 2:
            raise ValueError(f"{name} needs a 2-D array, got shape {g.shape}")
    except AttributeError:
        _not_arrays(name, g=g)
        raise


def row_sum(g):
    """s[i] := sum_j g[i, j], by the same tree over j: bitwise column_sum(g.T)."""
    _matrix_refused("row_sum", g)
    return _impl_var.get(_impl).row_sum(g, _threads_var.get(_kernel_threads))


_checked_axes = set()  # (ndim, axes) pairs found valid: the check costs a lookup afterwards


def sum(x, axes):  # noqa: A001 (the contract's name; only cygrad.backend.sum)
    """The sum of x (float32 or float64) over `axes`, a tuple of distinct axes in ascending
    order (each 0 <= a < x.ndim); the result has the reduced axes removed (no axes: a copy).

    Each output adds its elements in C order of the reduced axes by the kernels' fixed tree
    (csrc/sums.h), whatever the layout: column_sum or row_sum on the array as it lies when it
    can, a copy when it cannot. Both backends give the same bits."""
    try:
        if x.dtype not in FLOAT_DTYPES:
            _check_float("sum", x)
        ndim = x.ndim
    except AttributeError:
        _not_arrays("sum", x=x)
        raise
    # the cache compares by value (0.0 == 0): a hit counts only for axes that are Python ints
    if type(axes) is not tuple or (ndim, axes) not in _checked_axes \
            or not all(type(a) is int for a in axes):
        _check_axes(ndim, axes)
    return _impl_var.get(_impl).sum(x, axes, _threads_var.get(_kernel_threads))


def _check_axes(ndim, axes):
    if type(axes) is not tuple:
        raise TypeError(f"sum: axes must be a tuple of ints, got {type(axes).__name__}")
    for a in axes:
        if isinstance(a, bool) or not isinstance(a, (int, np.integer)):
            raise TypeError(f"sum: axes must be ints, got {a!r} in {axes}")
    if any(not 0 <= a < ndim for a in axes) or list(axes) != sorted(set(axes)):
        raise ValueError(f"sum: axes {axes} must be distinct, ascending and within 0..{ndim - 1}")
    if len(_checked_axes) < 4096:
        _checked_axes.add((ndim, axes))


def channel_sum(g):
    """s[k] := sum_i sum_q g[i, k, q], g (n, c, p), by the tree over r = i*p + q: a
    convolution's bias gradient, bitwise column_sum of the same numbers as (n*p, c) rows."""
    try:
        if g.dtype not in FLOAT_DTYPES:
            _check_float("channel_sum", g)
        if g.ndim != 3:
            raise ValueError(f"channel_sum needs a 3-D array, got shape {g.shape}")
    except AttributeError:
        _not_arrays("channel_sum", g=g)
        raise
    return _impl_var.get(_impl).channel_sum(g, _threads_var.get(_kernel_threads))


def sum_to_shape(g, shape):
    """Sum gradient g (a broadcast result) back down to `shape` (sum's bits)."""
    try:
        shape = tuple(shape)
        if g.shape == shape:
            return g
        if g.dtype not in FLOAT_DTYPES:
            _check_float("sum_to_shape", g)
    except AttributeError:
        _not_arrays("sum_to_shape", g=g)
        raise
    lead = g.ndim - len(shape)
    if lead < 0 or any(s != 1 and s != gs for s, gs in zip(shape, g.shape[lead:])):
        raise ValueError(f"cannot sum a gradient of shape {g.shape} to shape {shape}")
    axes = tuple(range(lead)) + tuple(
        lead + i for i, s in enumerate(shape) if s == 1 and g.shape[lead + i] != 1)
    return _impl_var.get(_impl).sum_to_shape(g, axes, shape, _threads_var.get(_kernel_threads))


def _check_targets(logits, targets):
    targets = np.asarray(targets)
    if targets.dtype.kind not in "iu":
        raise TypeError(f"class targets must be integers, got dtype {targets.dtype}")
    if logits.ndim != 2 or targets.shape != (logits.shape[0],):
        raise ValueError(f"cross-entropy: logits of shape {logits.shape} need targets of shape "
                         f"({logits.shape[0] if logits.ndim else '?'},), got {targets.shape}")
    # A copy: another thread may write the caller's array at any moment. Its range is checked
    # where the targets index: the cython kernel checks its own private copy of them (the
    # same ValueError), the numpy twin this copy (numpy_backend.check_classes).
    return np.array(targets, dtype=np.intp)


def log_softmax_nll(logits, targets):
    """(losses, logp): logp = log_softmax(logits) per row, losses[i] = -logp[i, targets[i]]."""
    try:
        _check_float("cross_entropy", logits)
    except AttributeError:
        _not_arrays("cross_entropy", logits=logits)
        raise
    targets = _check_targets(logits, targets)
    return _impl_var.get(_impl).log_softmax_nll(logits, targets,
                                                _threads_var.get(_kernel_threads))


def log_softmax_nll_backward(logp, targets, g_rows):
    """dlogits[i] := g_rows[i] * (exp(logp[i]) - onehot(targets[i]))."""
    try:
        _check_float("cross_entropy backward", logp, g_rows)
        if g_rows.shape != logp.shape[:1]:
            raise ValueError(f"cross_entropy backward: row gradients of shape {g_rows.shape} "
                             f"for log-probabilities of shape {logp.shape}")
    except AttributeError:
        _not_arrays("cross_entropy backward", logp=logp, g_rows=g_rows)
        raise
    targets = _check_targets(logp, targets)
    return _impl_var.get(_impl).log_softmax_nll_backward(logp, targets, g_rows,
                                                         _threads_var.get(_kernel_threads))


# ---------------------------------------------------------------- convolution and pooling

def _current():
    """This thread's backend module."""
    return _impl_var.get(_impl)


def _threads():
    """This thread's kernel thread count."""
    return _threads_var.get(_kernel_threads)


def _int(fn, name, value, low):
    """value as a Python int >= low, or a ValueError/TypeError naming it."""
    try:
        i = operator.index(value)
    except TypeError:
        raise TypeError(f"{fn}: {name} must be an integer, got {value!r}") from None
    if i < low:
        raise ValueError(f"{fn}: {name} must be at least {low}, got {i}")
    return i



def _pair(value, name):
    if type(value) is tuple and len(value) == 2 and type(value[0]) is int \
            and type(value[1]) is int:
        return value  # the ops' own form: one test
    pair = tuple(value) if isinstance(value, (tuple, list)) else (value, value)
    if len(pair) != 2 or not all(isinstance(v, (int, np.integer)) for v in pair):
        raise ValueError(f"{name} must be an int or a pair of ints, got {value!r}")
    return int(pair[0]), int(pair[1])


def _conv_geometry(x_shape, kh, kw, stride, padding, dilation, out_size):
    """(sh, sw, ph, pw, dh, dw, oh, ow) for the kernels: padding is (top, left); out_size
    defaults to that of an equal padding after the image."""
    if len(x_shape) != 4:
        raise ValueError(f"expected an (N, C, H, W) shape, got {tuple(x_shape)}")
    h, w = x_shape[2:]
    (sh, sw), (ph, pw) = _pair(stride, "stride"), _pair(padding, "padding")
    dh, dw = _pair(dilation, "dilation")
    if kh < 1 or kw < 1:
        raise ValueError(f"kernel size must be positive, got {kh}x{kw}")
    if sh < 1 or sw < 1:
        raise ValueError(f"stride must be at least 1, got {(sh, sw)}")
    if dh < 1 or dw < 1:
        raise ValueError(f"dilation must be at least 1, got {(dh, dw)}")
    if ph < 0 or pw < 0:
        raise ValueError(f"padding must be non-negative, got {(ph, pw)}")
    limit = (1 << 31) - 1  # the kernels' bound on each geometry number (csrc/conv.pyx)
    for name, value in (("kernel size", max(kh, kw)), ("stride", max(sh, sw)),
                        ("padding", max(ph, pw)), ("dilation", max(dh, dw))):
        if value > limit:
            raise ValueError(f"{name} must be in [0, {limit}], got {value}")
    eh, ew = (kh - 1) * dh + 1, (kw - 1) * dw + 1  # the dilated kernel's extent
    if out_size is None:
        if h + 2 * ph < eh or w + 2 * pw < ew:
            raise ValueError(f"kernel {kh}x{kw} (dilation {(dh, dw)}) is larger than the padded "
                             f"input {h + 2 * ph}x{w + 2 * pw}")
        out_size = ((h + 2 * ph - eh) // sh + 1, (w + 2 * pw - ew) // sw + 1)
    oh, ow = _pair(out_size, "out_size")
    if oh < 0 or ow < 0:
        raise ValueError(f"output size must be non-negative, got {(oh, ow)}")
    return sh, sw, ph, pw, dh, dw, oh, ow


def im2col(x, kh, kw, stride=1, padding=0, dilation=1, out_size=None):
    """Patches of x (N, C, H, W) as rows: (N*OH*OW, C*kh*kw), zero padding. stride, padding
    (top, left), dilation: ints or pairs; out_size (OH, OW) defaults to an even padding's."""
    _float_input("im2col", x=x)
    geometry = _conv_geometry(x.shape, kh, kw, stride, padding, dilation, out_size)
    return _current().im2col(x, kh, kw, *geometry, _threads())


def col2im(cols, x_shape, kh, kw, stride=1, padding=0, dilation=1, out_size=None):
    """The adjoint of im2col: scatter-add rows of patches back into an (N, C, H, W) array."""
    _float_input("col2im", cols=cols)
    geometry = _conv_geometry(x_shape, kh, kw, stride, padding, dilation, out_size)
    n, c = x_shape[:2]
    oh, ow = geometry[-2:]
    if cols.shape != (n * oh * ow, c * kh * kw):
        raise ValueError(f"col2im: columns of shape {cols.shape} do not fit input {x_shape}")
    return _current().col2im(cols, tuple(x_shape), kh, kw, *geometry, _threads())


def im2col_t(x, kh, kw, stride=1, padding=0, dilation=1, out_size=None):
    """im2col(x).T, C-contiguous: patches as columns, (C*kh*kw, N*OH*OW)."""
    if type(x) is not np.ndarray or x.dtype not in FLOAT_DTYPES:
        _float_input("im2col_t", x=x)
    geometry = _conv_geometry(x.shape, kh, kw, stride, padding, dilation, out_size)
    return _current().im2col_t(x, kh, kw, *geometry, _threads())


def col2im_t(cols_t, x_shape, kh, kw, stride=1, padding=0, dilation=1, out_size=None,
             out=None):
    """The adjoint of im2col_t: col2im(cols_t.T), bitwise; into `out` (a writable C-contiguous
    array of x_shape and cols_t's dtype) when given."""
    if type(cols_t) is not np.ndarray or cols_t.dtype not in FLOAT_DTYPES:
        _float_input("col2im_t", cols_t=cols_t)
    geometry = _conv_geometry(x_shape, kh, kw, stride, padding, dilation, out_size)
    n, c = x_shape[:2]
    oh, ow = geometry[-2:]
    if cols_t.shape != (c * kh * kw, n * oh * ow):
        raise ValueError(f"col2im_t: columns of shape {cols_t.shape} do not fit input {x_shape}")
    if out is not None:
        _check_out("col2im_t", out, tuple(x_shape), cols_t.dtype)
    return _current().col2im_t(cols_t, tuple(x_shape), kh, kw, *geometry, _threads(), out)


def _check_out(name, out, shape, dtype):
    if (out.shape != shape or out.dtype != dtype or not out.flags.c_contiguous
            or not out.flags.writeable):
        raise ValueError(f"{name}: out must be a writable C-contiguous {dtype} array of shape "
                         f"{shape}, got {out.dtype} {out.shape}")


def gemm_into(a, b, out, trans_a=False, trans_b=False, accumulate=False):
    """out := op(A) @ op(B), or out := out + op(A) @ op(B) with accumulate (on the cython
    backend each element's chain then continues from out's value: bitwise one product over
    both k ranges). out: a writable C-contiguous array of the product's shape and dtype."""
    if a.dtype is not b.dtype or a.dtype not in FLOAT_DTYPES or a.ndim != 2 or b.ndim != 2:
        _check_gemm(a, b, trans_a, trans_b)
    shape = (a.shape[1 if trans_a else 0], b.shape[0 if trans_b else 1])
    if (out.shape != shape or out.dtype is not a.dtype or not out.flags.c_contiguous
            or not out.flags.writeable):
        _check_out("gemm_into", out, shape, a.dtype)
    try:  # the kernel checks the inner sizes (and everything else) again
        return _current().gemm_into(a, b, out, trans_a, trans_b, accumulate, _threads())
    except ValueError:
        _check_gemm(a, b, trans_a, trans_b)  # the error in cygrad's words
        raise


def planes_to_images(planes, bias, n, p):
    """out[i, o, q] := planes[o, i*p + q] + bias[o] (no add when bias is None): a convolution's
    (O, n*p) gemm result in (n, O, p) layout, with its bias. One add an element, bias_add's."""
    try:
        if bias is not None and (planes.dtype is not bias.dtype
                                 or planes.dtype not in FLOAT_DTYPES):
            _check_float("planes_to_images", planes, bias)
        elif planes.dtype not in FLOAT_DTYPES:
            _check_float("planes_to_images", planes)
        n, p = _int("planes_to_images", "n", n, 0), _int("planes_to_images", "p", p, 0)
        if planes.ndim != 2 or planes.shape[1] != n * p:
            raise ValueError(f"planes_to_images: planes of shape {planes.shape} do not split "
                             f"into {n} images of {p} pixels")
        if bias is not None and bias.shape != planes.shape[:1]:
            raise ValueError(f"planes_to_images: bias of shape {bias.shape} for "
                             f"{planes.shape[0]} channels")
    except AttributeError:
        _not_arrays("planes_to_images", planes=planes,
                    **({} if bias is None else {"bias": bias}))
        raise
    return _current().planes_to_images(planes, bias, n, p,
                                                 _threads())


def add_channel_bias(y, b):
    """y[i, o, q] := y[i, o, q] + b[o] in place (y (n, O, p) writable, C-contiguous): one add an
    element, planes_to_images's bits. Returns y."""
    _check_float("add_channel_bias", y, b)
    if y.ndim != 3 or b.shape != y.shape[1:2]:
        raise ValueError(f"add_channel_bias: bias of shape {b.shape} for images of shape "
                         f"{y.shape}")
    if not y.flags.c_contiguous or not y.flags.writeable:
        raise ValueError("add_channel_bias: y must be a writable C-contiguous array")
    return _current().add_channel_bias(y, b, _threads())


def conv_image(x, w2, bias, out, kh, kw, stride=1, padding=0, dilation=1, out_size=None):
    """A convolution image by image into out (N, O, OH*OW): ``out[n] = w2 @ im2col_t(x[n:n+1])``
    (+ bias[o] when bias is not None), x (N, C, H, W), w2 (O, C*kh*kw); bitwise gemm_into(w2,
    im2col_t(...)) then add_channel_bias, whatever the batch (the cython kernel packs the
    patches straight from each image). Returns out."""
    if type(x) is not np.ndarray or type(w2) is not np.ndarray or type(out) is not np.ndarray:
        _not_arrays("conv_image", x=x, w2=w2, out=out)
    _check_float("conv_image", x, w2, out, *(() if bias is None else (bias,)))
    if x.ndim != 4 or w2.ndim != 2:
        raise ValueError(f"conv_image: expected x (N, C, H, W) and w2 (O, C*kh*kw), got shapes "
                         f"{x.shape} and {w2.shape}")
    geometry = _conv_geometry(x.shape, kh, kw, stride, padding, dilation, out_size)
    if w2.shape[1] != x.shape[1] * kh * kw:
        raise ValueError(f"conv_image: weights of shape {w2.shape} for {x.shape[1]} channels "
                         f"and a {kh}x{kw} kernel")
    _check_out("conv_image", out, (x.shape[0], w2.shape[0], geometry[-2] * geometry[-1]),
               x.dtype)
    if bias is not None and bias.shape != (w2.shape[0],):
        raise ValueError(f"conv_image: bias of shape {bias.shape} for {w2.shape[0]} channels")
    return _current().conv_image(x, w2, bias, out, kh, kw, *geometry, _threads())


def conv_image_grad(x, g, out, accumulate, kh, kw, stride=1, padding=0, dilation=1,
                    out_size=None):
    """A weight gradient image by image into out (O, C*kh*kw): ``g[n] @ im2col_t(x[n:n+1]).T``
    added in order of n (the first stored unless accumulate: each added with one rounding);
    x (N, C, H, W), g (N, O, OH*OW). Bitwise gemm_into(g[n], im2col_t(...), out,
    trans_b=True, accumulate=accumulate or n > 0) one image after another (the cython kernel
    packs the patches straight from each image). Returns out."""
    if type(x) is not np.ndarray or type(g) is not np.ndarray or type(out) is not np.ndarray:
        _not_arrays("conv_image_grad", x=x, g=g, out=out)
    _check_float("conv_image_grad", x, g, out)
    if x.ndim != 4 or g.ndim != 3:
        raise ValueError(f"conv_image_grad: expected x (N, C, H, W) and g (N, O, OH*OW), got "
                         f"shapes {x.shape} and {g.shape}")
    geometry = _conv_geometry(x.shape, kh, kw, stride, padding, dilation, out_size)
    if g.shape[0] != x.shape[0] or g.shape[2] != geometry[-2] * geometry[-1]:
        raise ValueError(f"conv_image_grad: gradient of shape {g.shape} for {x.shape[0]} "
                         f"images of {geometry[-2]}x{geometry[-1]} output positions")
    _check_out("conv_image_grad", out, (g.shape[1], x.shape[1] * kh * kw), x.dtype)
    return _current().conv_image_grad(x, g, out, bool(accumulate), kh, kw, *geometry,
                                      _threads())


def conv_image_backward(x, g, w2, dw, dx, kh, kw, stride=1, padding=0, dilation=1,
                        out_size=None):
    """A convolution's gradients image by image, each image's g used while it is in cache: for
    n = 0, 1, ...: ``dw (+)= g[n] @ im2col_t(x[n:n+1]).T`` (conv_image_grad's chain: stored
    for n = 0, then added) and ``dx[n] = col2im_t(w2.T @ g[n])``; dw or dx None skips it.
    x (N, C, H, W), g (N, O, OH*OW), w2 (O, C*kh*kw); dw (O, C*kh*kw) and dx x's shape:
    writable C-contiguous arrays of x's dtype. Bitwise conv_image_grad, gemm_into and
    col2im_t one image at a time (the checks made once)."""
    if type(x) is not np.ndarray or type(g) is not np.ndarray or type(w2) is not np.ndarray:
        _not_arrays("conv_image_backward", x=x, g=g, w2=w2)
    _check_float("conv_image_backward", x, g, w2, *(a for a in (dw, dx) if a is not None))
    if x.ndim != 4 or g.ndim != 3 or w2.ndim != 2:
        raise ValueError(f"conv_image_backward: expected x (N, C, H, W), g (N, O, OH*OW) and "
                         f"w2 (O, C*kh*kw), got shapes {x.shape}, {g.shape} and {w2.shape}")
    geometry = _conv_geometry(x.shape, kh, kw, stride, padding, dilation, out_size)
    n, c = x.shape[:2]
    if g.shape != (n, w2.shape[0], geometry[-2] * geometry[-1]) or w2.shape[1] != c * kh * kw:
        raise ValueError(f"conv_image_backward: gradient of shape {g.shape} and weights of "
                         f"shape {w2.shape} for input {x.shape}, a {kh}x{kw} kernel and "
                         f"{geometry[-2]}x{geometry[-1]} output positions")
    if dw is not None:
        _check_out("conv_image_backward", dw, w2.shape, x.dtype)
    if dx is not None:
        _check_out("conv_image_backward", dx, x.shape, x.dtype)
    _current().conv_image_backward(x, g, w2, dw, dx, kh, kw, *geometry, _threads())


def _check_windows(name, x_shape, windows, steps=(1, 1)):
    """windows (hs, he, ws, we): int64 1-D arrays, hs[o] <= he[o] within the plane's height
    (likewise the columns)."""
    _, h, w = x_shape
    hs, he, ws, we = windows
    for starts, ends, extent, step in ((hs, he, h, steps[0]), (ws, we, w, steps[1])):
        for a in (starts, ends):
            if not isinstance(a, np.ndarray) or a.dtype != np.int64 or a.ndim != 1:
                raise TypeError(f"{name}: window bounds must be 1-D int64 arrays")
        if starts.shape != ends.shape or int(step) < 1:
            raise ValueError(f"{name}: {len(starts)} window starts, {len(ends)} ends, "
                             f"step {step}")
        bad = (starts < 0) | (ends > extent) | (starts > ends)
        if bad.any():
            o = int(np.argmax(bad))
            raise ValueError(f"{name}: window {o} is [{starts[o]}, {ends[o]}), not a range "
                             f"inside [0, {extent})")


def _check_planes(name, x):
    _check_float(name, x)
    if x.ndim != 3:
        raise ValueError(f"{name} needs (P, H, W) planes, got shape {x.shape}")


def max_pool(x, hs, he, ws, we, dh=1, dw=1):
    """(out, idx): out[p, oy, ox] the maximum of x (P, H, W) over rows hs[oy], hs[oy] + dh, ...
    below he[oy] and the columns likewise (windows inside the plane), idx its flat index
    y*W + x in the plane, int64; the first maximum wins a tie, NaN wins (the last NaN). An empty
    window gives -inf and index -1."""
    _check_planes("max_pool", x)
    _check_windows("max_pool", x.shape, (hs, he, ws, we), (dh, dw))
    return _current().max_pool(x, hs, he, ws, we, int(dh), int(dw), _threads())


def max_pool_backward(g, idx, in_shape):
    """dx (P, H, W) = 0, then dx[p].flat[idx[p, q]] += g[p].flat[q] in ascending q (index -1:
    nothing)."""
    _check_planes("max_pool backward", g)
    if idx.dtype != np.int64 or idx.shape != g.shape or len(in_shape) != 3 \
            or in_shape[0] != g.shape[0]:
        raise ValueError(f"max_pool backward: gradient {g.shape}, indices {idx.shape} "
                         f"{idx.dtype} and input {tuple(in_shape)} do not fit")
    return _current().max_pool_backward(g, idx, tuple(in_shape), _threads())


def _check_counts(name, windows, hc, wc, divisor_override):
    for a, n in ((hc, len(windows[0])), (wc, len(windows[2]))):
        if not isinstance(a, np.ndarray) or a.dtype != np.int64 or a.shape != (n,):
            raise ValueError(f"{name}: window counts must be int64 arrays of the outputs' size")
    if int(divisor_override) != divisor_override:
        raise ValueError(f"{name}: divisor_override must be an integer (0: none)")


def avg_pool(x, hs, he, ws, we, hc, wc, divisor_override=0):
    """out[p, oy, ox] = (window sum, ascending) / (divisor_override or hc[oy] * wc[ox]); the
    windows (step 1) inside the plane; 0 for an empty one."""
    _check_planes("avg_pool", x)
    _check_windows("avg_pool", x.shape, (hs, he, ws, we))
    _check_counts("avg_pool", (hs, he, ws, we), hc, wc, divisor_override)
    return _current().avg_pool(x, hs, he, ws, we, hc, wc, int(divisor_override), _threads())


def avg_pool_backward(g, in_shape, hs, he, ws, we, hc, wc, divisor_override=0):
    """dx (P, H, W) = 0, then each output's g / divisor added over its window, outputs in
    ascending (oy, ox)."""
    _check_planes("avg_pool backward", g)
    if len(in_shape) != 3 or in_shape[0] != g.shape[0] or g.shape[1:] != (len(hs), len(ws)):
        raise ValueError(f"avg_pool backward: gradient {g.shape} does not fit input "
                         f"{tuple(in_shape)} and {len(hs)}x{len(ws)} windows")
    _check_windows("avg_pool backward", in_shape, (hs, he, ws, we))
    _check_counts("avg_pool backward", (hs, he, ws, we), hc, wc, divisor_override)
    return _current().avg_pool_backward(g, tuple(in_shape), hs, he, ws, we, hc, wc,
                                   int(divisor_override), _threads())


# ---------------------------------------------------------------- optimisers
# Each updates a whole parameter group in place, torch.optim's algorithm as the numpy twin
# states it (numpy_backend, "optimisers"): lists of arrays, one entry per parameter; options
# are rounded to each parameter's dtype and every operation rounds as numpy's would, so both
# backends give the same bits. Gradients and state have their parameter's dtype and shape
# (the optimiser checks; the kernel checks again); step counters are 0-d float arrays,
# advanced in place. Each returns the positions of the parameters it refused because they
# were read-only, with nothing of theirs written (the optimiser retries them on a copy).

def all_differ(columns):
    """Whether no two of the values of `columns` (a list of 1-d float32/float64 arrays, any
    stride), all together, are equal: +0.0 and -0.0 are equal, a NaN anywhere gives False, no
    values True. The symmetry monitor's check after every step that each layer's units still all
    differ (one value per unit). Comparisons only: the compiled kernel whatever the backend
    (csrc/symmetry.pyx), numpy's twin where it is not built or refuses an array."""
    columns = list(columns)
    for c in columns:
        if getattr(c, "dtype", None) is None or c.dtype.kind != "f" or c.ndim != 1:
            raise TypeError(f"all_differ takes 1-d float arrays, got {c!r:.80}")
    if compiled_all_differ is not None:
        try:
            return compiled_all_differ(columns)
        except (TypeError, ValueError, BufferError):  # byte-swapped, unaligned, float16
            pass
    return numpy_backend.all_differ(columns)


def sgd_update(params, grads, lr, momentum=0.0, dampening=0.0, nesterov=False,
               weight_decay=0.0, bufs=None, fresh=None, maximize=False):
    """SGD: with momentum, bufs are the momentum buffers (updated) and fresh says which ones
    start now (they take the gradient)."""
    n = len(params)
    if len(grads) != n or (momentum != 0 and (bufs is None or fresh is None or len(bufs) != n
                                              or len(fresh) != n)):
        raise ValueError(f"sgd_update: {n} parameters but {len(grads)} gradients"
                         + ("" if momentum == 0 else
                            f" and {None if bufs is None else len(bufs)} momentum buffers"))
    if momentum == 0:
        bufs = fresh = None
    else:
        bufs, fresh = _list(bufs), _list(fresh)
    if type(params) is not list or type(grads) is not list:
        params, grads = _list(params), _list(grads)
    return _impl_var.get(_impl).sgd_update(params, grads, float(lr), float(momentum),
                                           float(dampening), bool(nesterov),
                                           float(weight_decay), bufs, fresh, bool(maximize),
                                           _threads_var.get(_kernel_threads))


def _list(items):
    return items if type(items) is list else list(items)


def _lists(*items):
    return [None if x is None else _list(x) for x in items]


def adam_update(params, grads, exp_avgs, exp_avg_sqs, steps, lr, beta1, beta2, eps,
                weight_decay=0.0, decoupled=False, amsgrad=False, max_exp_avg_sqs=None,
                maximize=False):
    """Adam (decoupled=False: weight decay coupled into the gradient) or AdamW
    (decoupled=True: the parameter shrinks by 1 - lr * weight_decay first); amsgrad keeps
    the running maximum of the second moment in max_exp_avg_sqs."""
    if amsgrad and max_exp_avg_sqs is None:
        raise ValueError("adam_update: amsgrad needs max_exp_avg_sqs")
    return _here().adam_update(*_lists(params, grads, exp_avgs, exp_avg_sqs,
                                     max_exp_avg_sqs if amsgrad else None, steps),
                             float(lr), float(beta1), float(beta2), float(eps),
                             float(weight_decay), bool(decoupled), bool(amsgrad),
                             bool(maximize), _threads_var.get(_kernel_threads))


def rmsprop_update(params, grads, square_avgs, steps, lr, alpha, eps, weight_decay=0.0,
                   momentum=0.0, centered=False, grad_avgs=None, momentum_buffers=None,
                   maximize=False):
    """RMSprop: grad_avgs when centered, momentum_buffers when momentum > 0."""
    if (centered and grad_avgs is None) or (momentum > 0 and momentum_buffers is None):
        raise ValueError("rmsprop_update: centered needs grad_avgs, momentum needs "
                         "momentum_buffers")
    return _here().rmsprop_update(*_lists(params, grads, square_avgs,
                                        grad_avgs if centered else None,
                                        momentum_buffers if momentum > 0 else None, steps),
                                float(lr), float(alpha), float(eps), float(weight_decay),
                                float(momentum), bool(centered), bool(maximize),
                                _threads_var.get(_kernel_threads))


def adagrad_update(params, grads, state_sums, steps, lr, lr_decay=0.0, weight_decay=0.0,
                   eps=1e-10, maximize=False):
    """Adagrad (dense gradients)."""
    return _here().adagrad_update(*_lists(params, grads, state_sums, steps), float(lr),
                                float(lr_decay), float(weight_decay), float(eps),
                                bool(maximize), _threads_var.get(_kernel_threads))


def adadelta_update(params, grads, square_avgs, acc_deltas, steps, lr, rho, eps,
                    weight_decay=0.0, maximize=False):
    """Adadelta."""
    return _here().adadelta_update(*_lists(params, grads, square_avgs, acc_deltas, steps),
                                 float(lr), float(rho), float(eps), float(weight_decay),
                                 bool(maximize), _threads_var.get(_kernel_threads))



def adamax_update(params, grads, exp_avgs, exp_infs, steps, lr, beta1, beta2, eps,
                  weight_decay=0.0, maximize=False):
    """Adamax."""
    return _here().adamax_update(*_lists(params, grads, exp_avgs, exp_infs, steps), float(lr),
                                 float(beta1), float(beta2), float(eps), float(weight_decay),
                                 bool(maximize), _threads_var.get(_kernel_threads))



def rprop_update(params, grads, prevs, step_sizes, steps, etaminus, etaplus, step_size_min,
                 step_size_max, maximize=False):
    """Rprop."""
    return _here().rprop_update(*_lists(params, grads, prevs, step_sizes, steps),
                                float(etaminus), float(etaplus), float(step_size_min),
                                float(step_size_max), bool(maximize),
                                _threads_var.get(_kernel_threads))


def asgd_update(params, grads, axs, etas, mus, steps, lr, lambd, alpha, t0, weight_decay=0.0,
                maximize=False):
    """ASGD (etas, mus: each parameter's 0-d states)."""
    return _here().asgd_update(*_lists(params, grads, axs, etas, mus, steps), float(lr),
                               float(lambd), float(alpha), float(t0), float(weight_decay),
                               bool(maximize), _threads_var.get(_kernel_threads))

def nadam_update(params, grads, exp_avgs, exp_avg_sqs, mu_products, steps, lr, beta1, beta2,
                 eps, weight_decay=0.0, momentum_decay=4e-3, decoupled=False, maximize=False):
    """NAdam (mu_products: each parameter's 0-d product of the momentum schedule)."""
    return _here().nadam_update(*_lists(params, grads, exp_avgs, exp_avg_sqs, mu_products,
                                        steps), float(lr), float(beta1), float(beta2),
                                float(eps), float(weight_decay), float(momentum_decay),
                                bool(decoupled), bool(maximize),
                                _threads_var.get(_kernel_threads))


def radam_update(params, grads, exp_avgs, exp_avg_sqs, steps, lr, beta1, beta2, eps,
                 weight_decay=0.0, decoupled=False, maximize=False):
    """RAdam."""
    return _here().radam_update(*_lists(params, grads, exp_avgs, exp_avg_sqs, steps),
                                float(lr), float(beta1), float(beta2), float(eps),
                                float(weight_decay), bool(decoupled), bool(maximize),
                                _threads_var.get(_kernel_threads))

# ---------------------------------------------------------------- the transformer layers
# (batched products, the embedding's scatter-add and the attention softmax: csrc/gemm.pyx's
# batched entry and csrc/transformer.pyx)

def batched_gemm(a, b, trans_a=False, trans_b=False):
    """C[i] := op(A[i]) @ op(B[i]) for a (batch, ., .) and b (batch, ., .), one float dtype,
    any strides (a batch stride of 0 repeats a matrix): each product has gemm's bits."""
    if (a.dtype is not b.dtype or a.dtype not in FLOAT_DTYPES or a.ndim != 3 or b.ndim != 3
            or a.shape[0] != b.shape[0]):
        _check_float("batched_gemm", a, b)
        raise ValueError(f"batched_gemm needs 3-D operands with one batch size, got shapes "
                         f"{a.shape} and {b.shape}")
    k_a, k_b = a.shape[1 if trans_a else 2], b.shape[2 if trans_b else 1]
    if k_a != k_b:
        ta, tb = ".T" if trans_a else "", ".T" if trans_b else ""
        raise ValueError(f"batched matmul: matrices of shapes {a.shape[1:]}{ta} and "
                         f"{b.shape[1:]}{tb} do not multiply ({k_a} != {k_b})")
    return _impl_var.get(_impl).batched_gemm(a, b, trans_a, trans_b,
                                             _threads_var.get(_kernel_threads))


def embedding_backward(g, indices, num_weights, padding_idx=-1, scale_grad_by_freq=False):
    """dW (num_weights, d): dW[k] := sum of s_k * g[i] over the positions i holding index k,
    in ascending i (s_k = 1, or 1/count(k) with scale_grad_by_freq); row padding_idx (-1: none)
    gets nothing. g (n, d) float, indices (n,) integers in [0, num_weights)."""
    if g.dtype not in FLOAT_DTYPES:
        _check_float("embedding_backward", g)
    if g.ndim != 2 or indices.shape != (g.shape[0],):
        raise ValueError(f"embedding_backward: gradient rows of shape {g.shape} need one index "
                         f"each, got indices of shape {indices.shape}")
    if indices.dtype != np.intp or not indices.flags.c_contiguous:
        if indices.dtype.kind not in "iu":
            raise TypeError(f"embedding_backward: indices must be integers, got {indices.dtype}")
        indices = np.ascontiguousarray(indices, dtype=np.intp)
    return _impl_var.get(_impl).embedding_backward(g, indices, int(num_weights),
                                                   int(padding_idx), bool(scale_grad_by_freq),
                                                   _threads_var.get(_kernel_threads))


def softmax_rows(x, scale=1.0, causal=0, shift=0):
    """softmax(scale * x) along the last dimension, the sum of exponentials in ascending order;
    a row of only -inf gives zeros. causal > 0: row r is query q = r % causal and attends to
    columns j <= q + shift only (the rest get 0): attention's causal mask without a mask
    array."""
    if x.dtype not in FLOAT_DTYPES:
        _check_float("softmax_rows", x)
    if x.ndim < 1:
        raise ValueError("softmax_rows needs at least a 1-D array")
    return _impl_var.get(_impl).softmax_rows(x, float(scale), int(causal), int(shift),
                                             _threads_var.get(_kernel_threads))


def softmax_rows_backward(y, g, scale=1.0):
    """dx := scale * y * (g - sum(g * y)) along the last dimension (the sum in ascending
    order): softmax's backward from its output y, with the scale its input was multiplied by."""
    if y.dtype is not g.dtype or y.dtype not in FLOAT_DTYPES:
        _check_float("softmax_rows_backward", y, g)
    _check_same_shape("softmax_rows", g, y)
    return _impl_var.get(_impl).softmax_rows_backward(y, g, float(scale),
                                                      _threads_var.get(_kernel_threads))


def dropout(bit_generator, x, keep, kept):
    """(y, scale), new arrays of x's shape and dtype: scale = kept where u < keep, else 0, with
    u = (53 bits of two 32-bit draws, the first the high half) * 2^-53 drawn from
    `bit_generator` (numpy's MT19937 holding torch's stream) in x's C order, and y = x * scale:
    torch's dropout mask, bernoulli_(keep) / (1 - p), in one pass. x C-contiguous float;
    kept = 1 / (1 - p) rounded in x's dtype. The caller holds cygrad's generator lock."""
    if x.dtype not in FLOAT_DTYPES:
        _check_float("dropout", x)
    if not x.flags.c_contiguous:
        raise ValueError(f"dropout: x must be C-contiguous, got strides {x.strides}")
    if not 0.0 <= keep <= 1.0:
        raise ValueError(f"dropout: keep must be in [0, 1], got {keep}")
    return _impl_var.get(_impl).dropout(bit_generator, x, float(keep), float(kept))


def layer_norm(x, w, b, eps):
    """(y, xhat, rstd): layer normalisation of the rows of x (r, n), y = xhat [* w] [+ b],
    xhat = (x - mean) * rstd, rstd = 1 / sqrt(var + eps) (r,), var biased; w, b (n,) or None.
    Sums by the kernels' tree, each elementwise step rounded once (csrc/norms.pyx)."""
    arrays = {"x": x} | ({} if w is None else {"w": w}) | ({} if b is None else {"b": b})
    try:
        _check_float("layer_norm", *arrays.values())
    except AttributeError:
        _not_arrays("layer_norm", **arrays)
        raise
    if x.ndim != 2 or any(a.shape != x.shape[1:] for a in (w, b) if a is not None):
        raise ValueError(f"layer_norm: rows of shape {x.shape} with w "
                         f"{None if w is None else w.shape}, b {None if b is None else b.shape}")
    return _impl_var.get(_impl).layer_norm(x, w, b, float(eps), _threads_var.get(_kernel_threads))


def layer_norm_backward(g, xhat, rstd, w, need_dx=True, need_dw=True, need_db=True):
    """(dx, dw, db) of layer_norm from the output gradient g (r, n), each None unless needed
    (dw and db sum over the rows)."""
    arrays = {"g": g, "xhat": xhat, "rstd": rstd} | ({} if w is None else {"w": w})
    try:
        _check_float("layer_norm backward", *arrays.values())
    except AttributeError:
        _not_arrays("layer_norm backward", **arrays)
        raise
    if g.ndim != 2 or xhat.shape != g.shape or rstd.shape != g.shape[:1] or (
            w is not None and w.shape != g.shape[1:]):
        raise ValueError(f"layer_norm backward: g {g.shape}, xhat {xhat.shape}, rstd "
                         f"{rstd.shape}, w {None if w is None else w.shape}")
    return _impl_var.get(_impl).layer_norm_backward(g, xhat, rstd, w, bool(need_dx),
                                                    bool(need_dw), bool(need_db),
                                                    _threads_var.get(_kernel_threads))


def mse(x, t, reduction):
    """(x - t, the mean (reduction 1) or sum (2) of its squares as a 0-d array): the tree sum,
    the mean divided in double and rounded once. x, t one float dtype and shape, not empty."""
    if x.dtype is not t.dtype or x.dtype not in FLOAT_DTYPES:
        _check_float("mse_loss", x, t)
    if x.shape != t.shape or x.size == 0:
        raise ValueError(f"mse_loss: shapes {x.shape} and {t.shape} (one shape, not empty)")
    if not (x.flags.c_contiguous and t.flags.c_contiguous):
        x, t = _contiguous(x), _contiguous(t)
    return _impl_var.get(_impl).mse(x, t, reduction)


def _contiguous(a):
    return a if a.flags.c_contiguous else np.ascontiguousarray(a)
