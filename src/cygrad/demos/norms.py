"""S10. Normalisation, embeddings and residuals.

LayerNorm mixes every channel of a row (its mean and variance) and BatchNorm every sample of a
channel, yet tied channels stay tied: the statistics are symmetric functions of the channels,
computed by one fixed summation tree, so two channels with equal values see equal statistics
and get equal gradients. The same holds for two dimensions of an embedding table (equal
columns, equal outgoing columns) and for units of a residual block y = h + f(h). Each model
here is random except for two channels i and j made tied (incoming rows, norm gains and
biases, outgoing columns, every array that defines them); after training, every one of those
arrays still holds bitwise-equal slices for i and j. The embedding table's rows of tokens that
never occur stay bitwise unchanged (plain SGD: a row gets a gradient only from its tokens).

Where cygrad has no nn.LayerNorm, nn.BatchNorm1d or nn.Embedding yet (they come with the
transformer layers), the demo uses its own small modules below, built from cygrad's ops (mean
over an axis through the exact summation tree), and says so in its output.
"""

import numpy as np

from .. import nn, optim, tensor
from ..nn import functional as F
from . import Result, table

I, J = 1, 3  # the tied pair
EPS = 1e-5


class _LayerNorm(nn.Module):
    """(x - mean) / sqrt(var + eps) * weight + bias over the last dim (biased variance)."""

    def __init__(self, n, dtype):
        super().__init__()
        self.weight = nn.Parameter(np.ones(n, dtype))
        self.bias = nn.Parameter(np.zeros(n, dtype))

    def forward(self, x):
        mean = x.mean(dim=-1, keepdim=True)
        var = ((x - mean) ** 2).mean(dim=-1, keepdim=True)
        return (x - mean) / (var + EPS).sqrt() * self.weight + self.bias


class _BatchNorm1d(_LayerNorm):
    """Training-mode batch norm of (N, C): statistics over the batch, per channel."""

    def forward(self, x):
        mean = x.mean(dim=0, keepdim=True)
        var = ((x - mean) ** 2).mean(dim=0, keepdim=True)
        return (x - mean) / (var + EPS).sqrt() * self.weight + self.bias


class _Embedding(nn.Module):
    def __init__(self, vocab, dim, dtype):
        super().__init__()
        self.weight = nn.Parameter(np.random.default_rng(5).standard_normal((vocab, dim))
                                   .astype(dtype))

    def forward(self, idx):
        return self.weight[idx]


def layer(name, *args, dtype):
    """nn.<name> when cygrad has it, else the demo's own module of that name."""
    cls = getattr(nn, name, None)
    if cls is not None:
        if name == "Embedding":
            return cls(*args, dtype=dtype), True
        return cls(args[0], dtype=dtype), True
    return {"LayerNorm": _LayerNorm, "BatchNorm1d": _BatchNorm1d,
            "Embedding": _Embedding}[name](*args, dtype), False


class Normed(nn.Module):
    """Linear(4, w) -> norm -> tanh -> Linear(w, 2)."""

    def __init__(self, norm, width, dtype):
        super().__init__()
        self.fc1 = nn.Linear(4, width, dtype=dtype)
        self.norm, self.native = layer(norm, width, dtype=dtype)
        self.fc2 = nn.Linear(width, 2, dtype=dtype)

    def forward(self, x):
        return self.fc2(self.norm(self.fc1(x)).tanh())

    def tied_arrays(self):
        """(array, axis) of every array that defines channels i and j."""
        return [(self.fc1.weight, 0), (self.fc1.bias, 0), (self.norm.weight, 0),
                (self.norm.bias, 0), (self.fc2.weight, 1)]


class Residual(nn.Module):
    """Linear(4, w) -> h + Linear(w, w)(tanh(h)) -> tanh -> Linear(w, 2)."""

    def __init__(self, width, dtype):
        super().__init__()
        self.native = True
        self.fc1 = nn.Linear(4, width, dtype=dtype)
        self.f = nn.Linear(width, width, dtype=dtype)
        self.fc2 = nn.Linear(width, 2, dtype=dtype)

    def forward(self, x):
        h = self.fc1(x)
        return self.fc2((h + self.f(h.tanh())).tanh())

    def tied_arrays(self):
        return [(self.fc1.weight, 0), (self.fc1.bias, 0), (self.f.weight, 0),
                (self.f.bias, 0), (self.f.weight, 1), (self.fc2.weight, 1)]


class Embedded(nn.Module):
    """Embedding(vocab, d) -> tanh -> Linear(d, vocab): tokens predict the next token."""

    def __init__(self, vocab, dim, dtype):
        super().__init__()
        self.emb, self.native = layer("Embedding", vocab, dim, dtype=dtype)
        self.out = nn.Linear(dim, vocab, dtype=dtype)

    def forward(self, idx):
        return self.out(self.emb(idx).tanh())

    def tied_arrays(self):
        return [(self.emb.weight, 1), (self.out.weight, 1)]


def dtype_of(array):
    return array.dtype


def tie(arrays):
    """Copy channel I's slice onto channel J in every array."""
    for p, axis in arrays:
        a = p.numpy()
        index_i = [slice(None)] * a.ndim
        index_j = list(index_i)
        index_i[axis], index_j[axis] = I, J
        a[tuple(index_j)] = a[tuple(index_i)]


def tied(arrays):
    return all(np.array_equal(np.take(p.numpy(), I, axis), np.take(p.numpy(), J, axis))
               for p, axis in arrays)


def randomise_norm(model, rng):
    """Random gains and biases (not the ones and zeros of a fresh norm), then tied again."""
    for p in (model.norm.weight, model.norm.bias):
        p.numpy()[...] = rng.uniform(0.5, 1.5, p.shape) if p is model.norm.weight else \
            rng.uniform(-0.2, 0.2, p.shape)


def train(model, inputs, targets, steps, adam, arrays=None):
    """Train; returns, for step 0 to steps, whether the channels' arrays (default: all of
    model.tied_arrays()) hold equal slices."""
    params = list(model.parameters())
    opt = optim.Adam(params, lr=1e-2) if adam else optim.SGD(params, lr=0.1)
    arrays = model.tied_arrays() if arrays is None else arrays
    checks = [tied(arrays)]
    for _ in range(steps):
        loss = F.cross_entropy(model(inputs), targets)
        opt.zero_grad()
        loss.backward()
        opt.step()
        checks.append(tied(arrays))
    return checks


def run(options):
    dtype = options.dtype
    width = 6 if options.width is None else options.width
    steps = 30 if options.steps is None else options.steps
    if width <= J:
        raise ValueError(f"the norms demo ties channels {I} and {J}: --width must be at least "
                         f"{J + 1}, got {width}")
    result = Result("S10", "Normalisation, embeddings and residuals",
                    f"channels {I} and {J} tied (equal incoming weights, equal norm gains and "
                    "biases, equal outgoing columns) stay tied behind LayerNorm and BatchNorm, "
                    "whose statistics mix every channel or sample; two tied embedding "
                    "dimensions stay tied, and rows of tokens that never occur are not "
                    "updated; a residual block h + f(h) keeps tied units tied.")
    rng = np.random.default_rng(options.seed)
    x = tensor(rng.standard_normal((16, 4)).astype(dtype))
    y = tensor(rng.integers(0, 2, 16))
    rows, missing = [], []
    for name, make in [("LayerNorm", lambda: Normed("LayerNorm", width, dtype)),
                       ("BatchNorm1d", lambda: Normed("BatchNorm1d", width, dtype)),
                       ("residual block", lambda: Residual(width, dtype))]:
        for adam in (False, True):
            model = make()
            if isinstance(model, Normed):
                randomise_norm(model, rng)
                if not model.native:
                    missing.append(name)
            tie(model.tied_arrays())
            checks = train(model, x, y, steps, adam)
            rows.append([name, "Adam" if adam else "SGD", "yes" if all(checks) else "NO",
                         next((s for s, c in enumerate(checks) if not c), "never")])
            result.verdict(f"{name}, {'Adam' if adam else 'SGD'}: channels {I} and {J} tied "
                           f"at every one of {steps} steps", all(checks))
    # the control: the same LayerNorm model with one outgoing weight of channel J nudged
    model = Normed("LayerNorm", width, dtype)
    randomise_norm(model, rng)
    tie(model.tied_arrays())
    w = model.fc2.weight.numpy()
    w[0, J] = w[0, J] * dtype_of(w).type(1.01)
    control = train(model, x, y, min(steps, 1), adam=False, arrays=model.tied_arrays()[:4])
    if steps:
        rows.append(["control: LayerNorm, fc2[0, j] * 1.01", "SGD",
                     "yes" if control[1] else "NO",
                     next((s for s, c in enumerate(control) if not c), "never")])
        result.verdict("control: with unequal outgoing columns the channels' incoming weights "
                       "and norm entries come apart at step 1", control[0] and not control[1])
    vocab, dim = 12, width
    tokens = rng.integers(0, vocab - 3, (24,))  # the last 3 tokens never occur
    model = Embedded(vocab, dim, dtype)
    if not model.native:
        missing.append("Embedding")
    tie(model.tied_arrays())
    before = model.emb.weight.numpy().copy()
    checks = train(model, tensor(tokens[:-1]), tensor(tokens[1:]), steps, adam=False)
    unused = sorted(set(range(vocab)) - set(tokens[:-1].tolist()))
    after = model.emb.weight.numpy()
    untouched = all(np.array_equal(before[t], after[t]) for t in unused)
    used_moved = all(not np.array_equal(before[t], after[t]) for t in set(tokens[:-1].tolist()))
    rows.append(["Embedding", "SGD", "yes" if all(checks) else "NO",
                 next((s for s, c in enumerate(checks) if not c), "never")])
    result.add(f"Width {width}, channels {I} and {J} tied, every other weight random; 16 "
               f"random inputs (4 features, 2 classes), {dtype}, cross-entropy; SGD lr 0.1 or "
               f"Adam lr 0.01, {steps} steps. 'tied' = every array defining the two channels "
               "holds bitwise-equal slices at every step:",
               table(["model", "optimiser", "tied", "first step untied"], rows))
    result.verdict(f"Embedding: dimensions {I} and {J} (equal table columns and outgoing "
                   f"columns) tied at every one of {steps} steps", all(checks))
    result.verdict(f"Embedding: rows of the {len(unused)} tokens that never occur unchanged, "
                   "rows of every token that occurs updated", untouched and used_moved,
                   f"unused tokens {unused}")
    if missing:
        result.add("Note:", "  this cygrad has no nn." + ", nn.".join(sorted(set(missing)))
                   + ": the demo used its own modules built from cygrad's ops (TODO: rerun "
                   "once the transformer layers are on main)")
    return result
