"""S11. Nearly identical units.

Unit j starts as unit i plus a perturbation of every one of its incoming weights: 1 ulp, 1e-6
or 1e-3, the rest of the network random. Three kinds of unit: a hidden unit of an MLP (its row
and bias), a conv filter, an attention head (its key, query and value weights). Each pair is
trained twice: with its outgoing weights random (the next layer listens to i and j
differently) and with them tied (equal columns of the next layer; for heads, equal blocks of
the projection). Measured: the distance ||unit_i - unit_j|| over the arrays of their input side
(row and bias; filter and bias; key, query and value weights), step by step, and its mean
growth factor per step (d_T / d_0) ** (1 / T): above 1 the units
specialise, below 1 they collapse together. Exact: with tied outgoing weights and no
perturbation the distance stays exactly 0.
"""

import functools

import numpy as np

from .. import data, nn, optim, tensor
from ..nn import functional as F
from ..random import manual_seed
from ..symmetry import head_modules, unit_slices
from . import Result, table
from . import heads as S9
from .filters import SIZE, conv_net

EPSILONS = ("1 ulp", 1e-6, 1e-3)
I, J = 0, 1


def perturb(array, eps):
    """array + eps (every element), or one ulp up where eps is "1 ulp"."""
    if eps == "1 ulp":
        return np.nextafter(array, np.inf).astype(array.dtype)
    return (array + array.dtype.type(eps)).astype(array.dtype)


def distance(layer):
    """||unit I - unit J|| over the arrays that define a unit's input side (a head's key,
    query and value weights, not its block of the projection)."""
    n, parts = unit_slices(layer)
    if head_modules(layer) is not None:
        parts = parts[:-1]
    total = 0.0
    for array, axis in parts:
        rows = np.moveaxis(array, axis, 0).reshape(n, -1).astype(np.float64)
        total += float(np.sum((rows[I] - rows[J]) ** 2))
    return total ** 0.5


# ------------------------------------------------------------------ the three kinds

def mlp_setup(dtype, seed, width=16):
    manual_seed(seed)
    model = nn.Sequential(nn.Linear(2, width, dtype=dtype), nn.Tanh(),
                          nn.Linear(width, width, dtype=dtype), nn.Tanh(),
                          nn.Linear(width, 1, dtype=dtype))
    X, y = data.spirals(64, noise=0.1, seed=seed, dtype=dtype)
    x, t = tensor(X), tensor(y.reshape(-1, 1).astype(dtype))

    def step():
        return F.mse_loss(model(x), t)

    first, nxt = model[0], model[2]

    def make_pair(eps, tied_out):
        w, b = first.weight.numpy(), first.bias.numpy()
        w[J], b[J] = w[I], b[I]
        if eps is not None:
            w[J], b[J] = perturb(w[I], eps), perturb(b[I:I + 1], eps)[0]
        if tied_out:
            nxt.weight.numpy()[:, J] = nxt.weight.numpy()[:, I]

    return model, first, step, make_pair, 0.1


def conv_setup(dtype, seed):
    manual_seed(seed)
    model = conv_net(4, dtype)
    X, y = data.bars_and_crosses(60, size=SIZE, seed=seed, dtype=dtype)
    x = tensor(X)
    k = (SIZE - 2) ** 2

    def step():
        return F.cross_entropy(model(x), y)

    conv, lin = model[0], model[3]

    def make_pair(eps, tied_out):
        w, b = conv.weight.numpy(), conv.bias.numpy()
        w[J], b[J] = w[I], b[I]
        if eps is not None:
            w[J], b[J] = perturb(w[I], eps), perturb(b[I:I + 1], eps)[0]
        if tied_out:
            lw = lin.weight.numpy()
            lw[:, J * k:(J + 1) * k] = lw[:, I * k:(I + 1) * k]

    return model, conv, step, make_pair, 0.05


def heads_setup(dtype, seed):
    model = S9.make(3, dtype, tied=False, seed=seed)
    batches = S9.batches(8, seed)
    fixed = next(batches)

    def step():
        x, y = fixed
        return F.cross_entropy(model(x).view(-1, S9.VOCAB), y)

    heads = list(model.sa.heads)

    def make_pair(eps, tied_out):
        for name in ("key", "query", "value"):
            wi, wj = getattr(heads[I], name).weight.numpy(), getattr(heads[J], name).weight.numpy()
            wj[...] = wi if eps is None else perturb(wi, eps)
        if tied_out:
            w = model.sa.proj.weight.numpy()
            s = S9.HEAD_SIZE
            w[:, J * s:(J + 1) * s] = w[:, I * s:(I + 1) * s]

    return model, model.sa, step, make_pair, 0.1


KINDS = {"MLP units": mlp_setup, "conv filters": conv_setup, "attention heads": heads_setup}


def trajectory(setup, eps, tied_out, steps, dtype, seed):
    """Distances between the pair at steps 0..steps (SGD with momentum 0.9)."""
    model, layer, loss_of, make_pair, lr = setup(dtype, seed)
    make_pair(eps, tied_out)
    opt = optim.SGD(model.parameters(), lr=lr, momentum=0.9)
    distances = [distance(layer)]
    for _ in range(steps):
        loss = loss_of()
        opt.zero_grad()
        loss.backward()
        opt.step()
        distances.append(distance(layer))
    return distances


def growth(d):
    """Mean growth factor per step, (d_T / d_0) ** (1 / T); None when d_0 or d_T is 0."""
    if len(d) < 2 or d[0] == 0 or d[-1] == 0:
        return None
    return (d[-1] / d[0]) ** (1 / (len(d) - 1))


def run(options):
    dtype = options.dtype
    steps = 60 if options.steps is None else options.steps
    width = 16 if options.width is None else options.width
    if width < 2:
        raise ValueError(f"the nearly demo needs an MLP width (--width) of at least 2, got "
                         f"{width}")
    setups = dict(KINDS, **{"MLP units": functools.partial(mlp_setup, width=width)})
    result = Result("S11", "Nearly identical units",
                    f"unit {J} starts as unit {I} plus a perturbation of 1 ulp, 1e-6 or 1e-3 "
                    f"(units of a 2-{width}-{width}-1 tanh MLP, conv filters, attention heads). "
                    "Observed: whether the pair's "
                    "distance grows (they specialise) or shrinks, with the outgoing weights "
                    "random or tied. Exact: tied outgoing weights and no perturbation keep the "
                    "distance exactly 0.")
    rows, curves = [], {}
    for kind, setup in setups.items():
        for tied_out in (False, True):
            for eps in EPSILONS:
                d = trajectory(setup, eps, tied_out, steps, dtype, options.seed)
                curves[(kind, tied_out, eps)] = d
                g = growth(d)
                rows.append([kind, "tied" if tied_out else "random", str(eps), f"{d[0]:.3g}",
                             f"{d[-1]:.3g}", "-" if g is None else f"{g:.5f}",
                             "-" if g is None else ("grows" if g > 1 else "shrinks" if g < 1
                                                    else "same")])
        zero = trajectory(setup, None, True, steps, dtype, options.seed)
        rows.append([kind, "tied", "0", f"{zero[0]:.3g}", f"{zero[-1]:.3g}", "-", "stays 0"
                     if all(v == 0 for v in zero) else "MOVED"])
        result.verdict(f"{kind}: tied outgoing weights, no perturbation: distance exactly 0 at "
                       f"every one of {steps} steps", all(v == 0 for v in zero))
    result.add(f"Distance ||unit {I} - unit {J}|| (the arrays of their input side) at step 0 and "
               f"step {steps}, and its mean growth factor per step, {dtype}, SGD momentum 0.9:",
               table(["unit kind", "outgoing", "eps", "d_0", f"d_{steps}", "growth/step",
                      "pair"], rows))
    grows = [r for r in rows if r[6] == "grows"]
    result.add("Finding:", f"  {len(grows)} of {len(rows) - 3} perturbed pairs grew apart; "
               "with random outgoing weights the pair gets different gradients from step 1 "
               "whatever eps is, with tied ones only eps itself separates them")
    if options.plot:
        result.figures += plot(options.plot, curves)
    return result


def plot(folder, curves):
    try:
        from matplotlib.figure import Figure
    except ImportError:
        return []
    import os

    os.makedirs(f"{folder}/nearly", exist_ok=True)
    fig = Figure(figsize=(12, 3.5))
    axes = fig.subplots(1, len(KINDS))
    for ax, kind in zip(axes, KINDS):
        for (k, tied_out, eps), d in curves.items():
            if k != kind:
                continue
            ax.plot(range(len(d)), d, linestyle="-" if tied_out else "--",
                    label=f"eps {eps}, {'tied' if tied_out else 'random'} out")
        ax.set(xlabel="step", ylabel="distance", yscale="log", title=kind)
        ax.legend(fontsize="x-small")
    fig.tight_layout()
    path = os.path.join(folder, "nearly", "distance.png")
    fig.savefig(path, dpi=100)
    return [path]
