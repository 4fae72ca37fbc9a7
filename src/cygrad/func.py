"""cygrad.func: torch.func's `functional_call` (a module called with other tensors in place of
its parameters and buffers) and its reverse-mode transforms, built on backward with
create_graph=True (cygrad/ops/higher.py), so they nest: `grad(grad(f))`, `jacrev(jacrev(f))`,
`hessian(f)`. `grad`, `grad_and_value`, `vjp`, `jacrev`, `hessian`, and `jvp`, `jacfwd` (by
torch's double-vjp trick: the values forward mode gives, computed in reverse mode). Arguments
and outputs may be tensors or pytrees of them (dicts, lists, tuples), as torch's.

Departures: there is no vmap (naming it raises), so `chunk_size` and `randomness` change
nothing; a transform of a function that does not use an argument gives zeros for it (torch's
too). A transform's result carries a graph only when its differentiated arguments did (as
torch's, outside any transform)."""

import numpy as np

from .autograd import enable_grad
from .autograd import grad as autograd_grad
from .nn.utils.stateless import _functional_call as functional_call
from .tensor import Tensor, _wrap

__all__ = ["functional_call", "grad", "grad_and_value", "vjp", "jvp", "jacrev", "jacfwd",
           "hessian"]


def __getattr__(name):
    raise AttributeError(f"module 'cygrad.func' has no attribute '{name}': cygrad does not "
                         f"implement torch.func.{name}")


# ---------------------------------------------------------------------- pytrees

def _flatten(tree):
    """(leaves, rebuild): the tensors of a pytree (dict, list, tuple, or one tensor) in
    order, and a function making the same structure from new leaves."""
    if isinstance(tree, Tensor):
        return [tree], lambda leaves: leaves[0]
    if isinstance(tree, dict):
        keys = list(tree)
        parts = [_flatten(tree[k]) for k in keys]
    elif isinstance(tree, (list, tuple)):
        keys = None
        parts = [_flatten(v) for v in tree]
    else:
        raise ValueError(f"Expected pytree of Tensors, got a leaf of type "
                         f"{type(tree).__name__}")
    sizes = [len(p[0]) for p in parts]
    leaves = [t for p in parts for t in p[0]]

    def rebuild(new):
        out, start = [], 0
        for (_, make), n in zip(parts, sizes):
            out.append(make(new[start:start + n]))
            start += n
        if keys is not None:
            return dict(zip(keys, out))
        return tuple(out) if isinstance(tree, tuple) else out

    return leaves, rebuild


def _argnums(argnums, count):
    single = isinstance(argnums, int)
    nums = (argnums,) if single else tuple(argnums)
    if not nums:
        raise RuntimeError("argnums must be non-empty")
    for n in nums:
        if not isinstance(n, int):
            raise RuntimeError(f"argnums must be int or Tuple[int, ...], got: {type(n)}")
        if not -count <= n < count:
            raise RuntimeError(f"Got argnums={n}, but only {count} positional inputs")
    return single, tuple(n % count for n in nums)


def _prepared(args, nums):
    """args with the differentiated ones' tensors as fresh leaves requiring grad (a view of
    a tensor that requires grad already: a transform nested in another, which differentiates
    through it); returns (args, leaves per argnum, whether any caller's tensor required
    grad)."""
    args = list(args)
    leaves, outer = [], False
    for n in nums:
        flat, rebuild = _flatten(args[n])
        made = []
        for t in flat:
            outer = outer or t.requires_grad
            made.append(t.view_as(t) if t.requires_grad else t.detach().requires_grad_(True))
        leaves.append((made, rebuild))
        args[n] = rebuild(made)
    return args, leaves, outer


def _finish(tree, keep):
    """A result: detached unless the caller's inputs carried a graph (an aux that is not a
    pytree of tensors as it is)."""
    if keep or tree is None:
        return tree
    try:
        flat, rebuild = _flatten(tree)
    except ValueError:
        return tree
    return rebuild([t.detach() for t in flat])


def _gradients(output, leaves):
    """d output / d leaves (zeros for an unused leaf), with a graph."""
    if not output.requires_grad:
        return [_wrap(np.zeros_like(t._data)) for t in leaves]
    got = autograd_grad(output, leaves, create_graph=True, allow_unused=True)
    return [_wrap(np.zeros_like(t._data)) if g is None else g for g, t in zip(got, leaves)]


def _regroup(leaves, values):
    """values (one per prepared leaf, in order) as one tree per argnum."""
    trees, start = [], 0
    for made, rebuild in leaves:
        trees.append(rebuild(values[start:start + len(made)]))
        start += len(made)
    return trees


def _call(func, args, kwargs, has_aux, name):
    """func's output and aux (None without has_aux), in grad mode."""

    with enable_grad():
        out = func(*args, **kwargs)
    if not has_aux:
        return out, None
    if not (isinstance(out, tuple) and len(out) == 2):
        raise RuntimeError(f"{name}(f)(*args): output of function f should be a tuple: "
                           "(output, aux) if has_aux is True")
    return out


# ---------------------------------------------------------------------- transforms

def grad_and_value(func, argnums=0, has_aux=False):
    """torch.func.grad_and_value: a function returning (the gradient of func's one-element
    output with respect to the arguments at argnums, func's output); with has_aux func
    returns (output, aux) and the result is (gradient, (output, aux))."""

    def wrapper(*args, **kwargs):
        single, nums = _argnums(argnums, len(args))
        args, leaves, outer = _prepared(args, nums)
        out, aux = _call(func, args, kwargs, has_aux, "grad_and_value")
        if not isinstance(out, Tensor):
            raise RuntimeError(f"grad_and_value(f)(*args): Expected f(*args) to return a "
                               f"Tensor, got {type(out)}")
        if out.numel() != 1:
            raise RuntimeError(f"grad_and_value(f)(*args): Expected f(*args) to return a "
                               f"scalar Tensor, got tensor with {out.dim()} dims. Maybe you "
                               "wanted to use the vjp or jacrev APIs instead?")
        with enable_grad():
            grads = _gradients(out, [t for made, _ in leaves for t in made])
        trees = _regroup(leaves, grads)
        g = _finish(trees[0] if single else tuple(trees), outer)
        value = out if outer else out.detach()
        return (g, (value, _finish(aux, outer))) if has_aux else (g, value)

    return wrapper


def grad(func, argnums=0, has_aux=False):
    """torch.func.grad: the gradient of func's one-element output with respect to the
    arguments at argnums (with has_aux: (gradient, aux)). Nests: grad(grad(f))."""
    inner = grad_and_value(func, argnums, has_aux)

    def wrapper(*args, **kwargs):
        g, value = inner(*args, **kwargs)
        return (g, value[1]) if has_aux else g

    return wrapper


def vjp(func, *primals, has_aux=False):
    """torch.func.vjp: (func(*primals), vjp_fn[, aux]); vjp_fn(cotangents) gives the
    vector-Jacobian product for each primal (a tuple)."""

    nums = tuple(range(len(primals)))
    args, leaves, outer = _prepared(primals, nums)
    out, aux = _call(func, args, {}, has_aux, "vjp")
    out_flat, _ = _flatten(out)
    everything = [t for made, _ in leaves for t in made]

    def vjp_fn(cotangents, retain_graph=True, create_graph=None):
        cots, _ = _flatten(cotangents)
        if len(cots) != len(out_flat):
            raise RuntimeError(f"Expected pytree structure of cotangents to be the same as "
                               f"pytree structure of outputs to the function ({len(out_flat)} "
                               f"tensors, got {len(cots)})")
        live = [(o, c) for o, c in zip(out_flat, cots) if o.requires_grad]
        with enable_grad():
            got = autograd_grad([o for o, _ in live], everything, [c for _, c in live],
                                create_graph=True, allow_unused=True) if live else \
                [None] * len(everything)
        got = [_wrap(np.zeros_like(t._data)) if g is None else g
               for g, t in zip(got, everything)]
        trees = _regroup(leaves, got)
        keep = outer or any(c.requires_grad for c in cots)
        return tuple(_finish(t, keep) for t in trees)

    result = _finish(out, outer)
    return (result, vjp_fn, _finish(aux, outer)) if has_aux else (result, vjp_fn)


def jacrev(func, argnums=0, *, has_aux=False, chunk_size=None, _preallocate_and_copy=False):
    """torch.func.jacrev: the Jacobian of func with respect to the arguments at argnums, by
    one reverse pass per output element: output.shape + input.shape (tuples for several
    argnums or outputs). Nests: jacrev(jacrev(f))."""

    def wrapper(*args, **kwargs):
        from . import stack

        single, nums = _argnums(argnums, len(args))
        args, leaves, outer = _prepared(args, nums)
        out, aux = _call(func, args, kwargs, has_aux, "jacrev")
        with enable_grad():
            outs, rebuild_out = _flatten(out)
            everything = [t for made, _ in leaves for t in made]
            per_out = []
            for o in outs:
                flat = o.reshape(-1)
                rows = [_gradients(flat[e], everything) for e in range(flat.shape[0])]
                mats = []
                for j, t in enumerate(everything):
                    column = [r[j] for r in rows]
                    m = stack(column) if column else t.new_zeros((0,) + tuple(t.shape))
                    mats.append(m.reshape(tuple(o.shape) + tuple(t.shape)))
                trees = _regroup(leaves, mats)
                per_out.append(trees[0] if single else tuple(trees))
        result = _finish(per_out[0] if isinstance(out, Tensor) else rebuild_out(per_out), outer)
        return (result, _finish(aux, outer)) if has_aux else result

    return wrapper


def jvp(func, primals, tangents, *, strict=False, has_aux=False):
    """torch.func.jvp: (func(*primals), the Jacobian-vector product with tangents), by the
    double-vjp trick (the same values forward mode gives, in reverse mode)."""
    if not isinstance(primals, tuple) or not isinstance(tangents, tuple):
        raise RuntimeError("jvp(f, primals, tangents): Expected primals and tangents to be "
                           "tuples")
    if len(primals) != len(tangents):
        raise RuntimeError("jvp(f, primals, tangents): Expected primals and tangents to have "
                           "the same python structure")
    nums = tuple(range(len(primals)))
    args, leaves, outer = _prepared(primals, nums)
    everything = [t for made, _ in leaves for t in made]
    tans = [t for tree in tangents for t in _flatten(tree)[0]]
    out, aux = _call(func, args, {}, has_aux, "jvp")
    with enable_grad():
        outs, rebuild_out = _flatten(out)
        us = [_wrap(np.zeros_like(o._data)).requires_grad_(True) for o in outs]
        live = [(o, u) for o, u in zip(outs, us) if o.requires_grad]
        back = autograd_grad([o for o, _ in live], everything, [u for _, u in live],
                             create_graph=True, allow_unused=True) if live else \
            [None] * len(everything)
        pairs = [(b, t) for b, t in zip(back, tans) if b is not None and b.requires_grad]
        got = autograd_grad([b for b, _ in pairs], us, [t for _, t in pairs],
                            create_graph=True, allow_unused=True) if pairs else [None] * len(us)
    got = [_wrap(np.zeros_like(o._data)) if g is None else g for g, o in zip(got, outs)]
    keep = outer or any(t.requires_grad for t in tans)
    result = (_finish(out, outer), _finish(rebuild_out(got), keep))
    return result + (_finish(aux, outer),) if has_aux else result


def jacfwd(func, argnums=0, has_aux=False, *, randomness="error"):
    """torch.func.jacfwd: the Jacobian (the same as jacrev's: cygrad has no forward mode, the
    columns come from reverse passes)."""
    return jacrev(func, argnums, has_aux=has_aux)


def hessian(func, argnums=0):
    """torch.func.hessian: jacfwd(jacrev(func)) as torch, here jacrev of jacrev."""
    return jacfwd(jacrev(func, argnums), argnums)
