"""cygrad.func: torch.func's `functional_call` (a module called with other tensors in place of
its parameters and buffers) and its reverse-mode transforms, built on backward with
create_graph=True (cygrad/ops/higher.py), so they nest: `grad(grad(f))`, `jacrev(jacrev(f))`,
`hessian(f)`. `grad`, `grad_and_value`, `vjp`, `jacrev`, `hessian`, and `jvp`, `jacfwd` (by
torch's double-vjp trick: the values forward mode gives, computed in reverse mode). Arguments
and outputs may be tensors or pytrees of them (dicts, lists, tuples), as torch's.

`vmap` runs the function once per sample (the mapped dims' slices) and stacks the results:
torch's values, each sample's bits exactly those of the function called on it alone (no
batching rule changes an operation), and no batched speed-up; `in_dims`, `out_dims`, nesting,
`randomness` ("error" raises when the function draws from the generator, "same" gives every
sample the same draws, "different" its own) as torch's; `chunk_size` changes nothing.

A transform of a function that does not use an argument gives zeros for it (torch's too). A
transform's result carries a graph only when its differentiated arguments did (as torch's,
outside any transform)."""

import numpy as np

from .autograd import enable_grad
from .autograd import grad as autograd_grad
from .nn.utils.stateless import _functional_call as functional_call
from .tensor import Tensor, _wrap

__all__ = ["functional_call", "grad", "grad_and_value", "vjp", "jvp", "jacrev", "jacfwd",
           "hessian", "vmap"]


def __getattr__(name):  # torch.func's other names (linearize, stack_module_state, ...)
    raise AttributeError(f"module 'cygrad.func' has no attribute '{name}': cygrad does not "
                         f"implement torch.func.{name}")


# ---------------------------------------------------------------------- pytrees

def _flatten(tree, tensors=True):
    """(leaves, rebuild): the leaves of a pytree (dict, list, tuple, or one leaf) in order,
    and a function making the same structure from new leaves. Leaves must be tensors unless
    tensors=False (vmap passes numbers and None through)."""
    if isinstance(tree, dict):
        keys = list(tree)
        parts = [_flatten(tree[k], tensors) for k in keys]
    elif isinstance(tree, (list, tuple)):
        keys = None
        parts = [_flatten(v, tensors) for v in tree]
    elif isinstance(tree, Tensor) or not tensors:
        return [tree], lambda leaves: leaves[0]
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


# ---------------------------------------------------------------------- vmap

def _dims_of(arg, dims, where):
    """The mapped dim (or None) of each tensor leaf of arg, from in_dims' entry dims (an int
    or None for the whole argument, or a pytree matching it)."""
    if dims is None or isinstance(dims, int):
        leaves, rebuild = _flatten(arg, False)
        return leaves, rebuild, [dims if isinstance(t, Tensor) else None for t in leaves]
    leaves, rebuild = _flatten(arg, False)
    flat_dims, _ = _flatten(dims, False)
    if len(flat_dims) != len(leaves):
        raise ValueError(f"vmap({where}, in_dims={dims}, ...)(<inputs>): in_dims is not "
                         "compatible with the structure of `inputs`.")
    return leaves, rebuild, flat_dims


def vmap(func, in_dims=0, out_dims=0, randomness="error", *, chunk_size=None):
    """torch.func.vmap: func mapped over dim in_dims of its inputs, the results stacked along
    out_dims (see the module docstring: one call per sample)."""
    if randomness not in ("error", "different", "same"):
        raise RuntimeError(f"Only allowed values for randomness are 'error', 'different', or "
                           f"'same'. Got {randomness}")
    name = getattr(func, "__name__", repr(func))

    def wrapped(*args, **kwargs):
        from . import random as _random
        from . import stack

        if isinstance(in_dims, (list, tuple)) and not isinstance(in_dims, int):
            if len(in_dims) != len(args):
                raise ValueError(f"vmap({name}, in_dims={in_dims}, ...)(<inputs>): in_dims is "
                                 f"not compatible with the structure of `inputs`. in_dims has "
                                 f"structure of length {len(in_dims)} but inputs has {len(args)}")
            per_arg = list(in_dims)
        elif in_dims is None or isinstance(in_dims, int):
            per_arg = [in_dims] * len(args)
        else:
            raise ValueError(f"vmap({name}, in_dims={in_dims}, ...): expected `in_dims` to be int "
                             f"or a (potentially nested) tuple matching the structure of inputs, "
                             f"got: {type(in_dims)}.")
        split, sizes = [], []
        for arg, dims in zip(args, per_arg):
            leaves, rebuild, dims = _dims_of(arg, dims, name)
            fixed = []
            for t, d in zip(leaves, dims):
                if d is None:
                    fixed.append(None)
                    continue
                if not isinstance(t, Tensor):
                    raise ValueError(f"vmap({name}, in_dims={in_dims}, ...)(<inputs>): Got "
                                     f"in_dim={d} for an input but the input is of type "
                                     f"{type(t)}. We cannot vmap over non-Tensor arguments, "
                                     "please use None as the respective in_dim")
                if not -t.dim() <= d < max(t.dim(), 1) or t.dim() == 0:
                    raise ValueError(f"vmap({name}, in_dims={in_dims}, ...)(<inputs>): Got "
                                     f"in_dim={d} for some input, but that input is a Tensor of "
                                     f"dimensionality {t.dim()} so expected in_dim to satisfy "
                                     f"-{t.dim()} <= in_dim < {t.dim()}.")
                fixed.append(d % t.dim())
                sizes.append(t.shape[d % t.dim()])
            split.append((leaves, rebuild, fixed))
        if not sizes:
            raise ValueError(f"vmap({name}, in_dims={in_dims}, ...)(<inputs>): at least one "
                             "input must be a Tensor mapped over (got in_dims None for all)")
        if len(set(sizes)) > 1:
            raise ValueError(f"vmap: Expected all tensors to have the same size in the mapped "
                             f"dimension, got sizes {sizes} for the mapped dimension")
        n = sizes[0]
        state = _random.get_rng_state()
        results = []
        for b in range(n):
            if randomness == "same":
                _random.set_rng_state(state)
            before = _random.get_rng_state() if randomness == "error" else None
            sample = [rebuild([t if d is None else t.select(d, b) for t, d in zip(leaves, dims)])
                      for leaves, rebuild, dims in split]
            out = func(*sample, **kwargs)
            if before is not None and not _same_state(before, _random.get_rng_state()):
                raise RuntimeError("vmap: called random operation while in randomness error "
                                   "mode. Please either use the 'same' or 'different' "
                                   "randomness flags on vmap or perform the randomness "
                                   "operation out of vmap")
            results.append(out)
        outs = [_flatten(r, False) for r in results]
        leaves0, rebuild_out = outs[0]
        dims = _flatten(out_dims, False)[0] if isinstance(out_dims, (tuple, list)) \
            else [out_dims] * len(leaves0)
        if len(dims) != len(leaves0):
            raise ValueError(f"vmap({name}, ..., out_dims={out_dims})(<inputs>): out_dims is not "
                             "compatible with the structure of `outputs`.")
        stacked = []
        for k, d in enumerate(dims):
            column = [o[0][k] for o in outs]
            if not all(isinstance(c, Tensor) for c in column):
                bad = next(c for c in column if not isinstance(c, Tensor))
                raise ValueError(f"vmap({name}, ...): `{name}` must only return Tensors, got "
                                 f"type {type(bad)}. Did you mean to set out_dims= to None for "
                                 "output?")
            if d is None:
                stacked.append(column[0])
                continue
            stacked.append(stack(column, dim=d if d >= 0 else d + column[0].dim() + 1))
        return rebuild_out(stacked)

    return wrapped


def _same_state(a, b):
    return a.shape == b.shape and bool((a == b).all())
