"""S7. Tied parameters: one parameter used in two places.

Backward adds the gradients arriving at a node from each of its uses (the multivariate chain
rule: dL/dW = sum over uses u of dL/dW_u). Here W is used twice, so its gradient is the sum of
two contributions. Each contribution is computed on its own by cutting the other use from the
graph with detach(); it runs the same operations on the same values as inside the full graph.
Two terms: IEEE addition is commutative, so the order in which backward adds them cannot
change the result, and the sum must match bitwise.
"""

import numpy as np

from .. import nn, optim, tensor
from ..nn import functional as F
from . import Result, table


class TransposedLinear(nn.Module):
    """y = x @ W + b, using (not copying) the weight W (out, in) of `linear`: a tied decoder."""

    def __init__(self, linear):
        super().__init__()
        self.weight = linear.weight  # the same Parameter object
        self.bias = nn.Parameter(np.zeros(linear.in_features, dtype=linear.weight.dtype))

    def forward(self, x):
        return F.linear(x, self.weight.T, self.bias)


class TiedAutoencoder(nn.Module):
    """x -> tanh(x @ W.T + b1) -> h @ W + b2: the decoder uses the encoder's weight."""

    def __init__(self, n_inputs, n_hidden, dtype):
        super().__init__()
        self.encoder = nn.Linear(n_inputs, n_hidden, dtype=dtype)
        self.decoder = TransposedLinear(self.encoder)

    def forward(self, x):
        return self.decoder(self.encoder(x).tanh())


def autoencoder_loss(model, x, cut=None):
    """Reconstruction error; cut = "encoder" or "decoder" detaches that use of W."""
    w, enc, dec = model.encoder.weight, model.encoder, model.decoder
    h = F.linear(x, w.detach() if cut == "encoder" else w, enc.bias).tanh()
    y = F.linear(h, (w.detach() if cut == "decoder" else w).T, dec.bias)
    return F.mse_loss(y, x)


def twice_loss(model, x, target, cut=None):
    """model = Sequential(layer, Tanh, layer); cut = "first" or "second" detaches that use of
    the layer's weight and bias."""
    layer = model[0]

    def params(use):
        w, b = layer.weight, layer.bias
        return (w.detach(), b.detach()) if cut == use else (w, b)

    h = F.linear(x, *params("first")).tanh()
    return F.mse_loss(F.linear(h, *params("second")), target)


def gradient(loss, param):
    """param's gradient from backward of loss() alone."""
    param.grad = None
    loss().backward()
    g = param.grad.numpy().copy()
    param.grad = None
    return g


def finite_difference(loss, param, eps=1e-6):
    """Central differences (L(p + eps) - L(p - eps)) / (2 eps), element by element."""
    flat, numeric = param._data.reshape(-1), np.zeros(param._data.size)
    for k in range(flat.size):
        original = flat[k]
        flat[k] = original + eps
        plus = loss().item()
        flat[k] = original - eps
        minus = loss().item()
        flat[k] = original
        numeric[k] = (plus - minus) / (2 * eps)
    return numeric.reshape(param.shape)


def as_float64(model, build):
    """A float64 copy of `model` (same architecture from build(), same values)."""
    copy = build("float64")
    for (_, p), (_, q) in zip(model.named_parameters(), copy.named_parameters(), strict=True):
        q._data[...] = p._data
    return copy


def check(result, label, build, loss_fn, name, uses, steps, lr, dtype):
    """Compare backward with finite differences on a float64 copy; then train `steps` SGD
    steps, checking at each that backward's gradient of the shared parameter `name` is the sum
    of its uses' contributions and that the update moved it once. Returns the model."""
    model = build(dtype)
    wide = as_float64(model, build)
    p64 = dict(wide.named_parameters())[name]
    analytic = gradient(lambda: loss_fn(wide), p64)
    numeric = finite_difference(lambda: loss_fn(wide), p64)
    error = float(np.abs(analytic - numeric).max())

    param = dict(model.named_parameters())[name]
    opt = optim.SGD(model.parameters(), lr=lr)
    first, sums_equal, updates_once = None, True, True
    for _ in range(max(steps, 1)):
        parts = [gradient(lambda cut=other: loss_fn(model, cut), param)
                 for other in uses[::-1]]  # cutting the other use leaves this one
        total = parts[0] + parts[1]
        opt.zero_grad()
        loss_fn(model).backward()
        sums_equal &= bool(np.array_equal(param.grad.numpy(), total))
        first = first or (parts, total, param.grad.numpy().copy())
        if steps == 0:
            break
        before = param._data.copy()
        opt.step()
        step = param._data.dtype.type(lr) * total
        updates_once &= bool(np.array_equal(param._data, before - step))

    parts, total, backward = first
    columns = [a.reshape(-1) for a in (*parts, total, backward, numeric)]
    rows = [[str(tuple(int(i) for i in np.unravel_index(k, param.shape)))]
            + [float(c[k]) for c in columns] for k in range(min(6, param._data.size))]
    result.add(f"{label}: gradient of the shared weight before training, first elements "
               f"({dtype}; finite differences on a float64 copy):",
               table(["element", f"{uses[0]} use", f"{uses[1]} use", "sum", "backward",
                      "finite diff."], rows, [None] + [".8g"] * 5))
    n = f"every one of {steps} steps" if steps else "step 0"
    result.verdict(f"{label}: backward's gradient = {uses[0]} use + {uses[1]} use at {n}",
                   sums_equal, "two terms, so the order of addition cannot matter")
    if steps:
        result.verdict(f"{label}: each SGD step moves the shared weight once, by lr x the sum "
                       f"(at {n})", updates_once)
    result.verdict(f"{label}: backward equal to central finite differences within 1e-6 "
                   "(float64 copy)", error <= 1e-6,
                   f"max |backward - finite difference| = {error:.1e}", exact=False)
    return model


def run(options):
    steps = 10 if options.steps is None else options.steps
    hidden = 3 if options.width is None else options.width
    dtype, lr = options.dtype, 0.1
    result = Result("S7", "Tied parameters (weight sharing)",
                    "a parameter used in two places gets, from backward, the sum of the "
                    "gradients of each use, equal (to rounding) to finite differences; it is "
                    "one object, listed once by parameters(), so both uses see the same update.")
    rng = np.random.default_rng(options.seed)
    arrays = rng.standard_normal((32, 6)), rng.standard_normal((32, 6))
    x = {dt: tensor(arrays[0], dtype=dt) for dt in (dtype, "float64")}
    target = {dt: tensor(arrays[1], dtype=dt) for dt in (dtype, "float64")}

    def dt(model):
        return next(model.parameters()).dtype.name

    def build_autoencoder(dt):
        return TiedAutoencoder(6, hidden, dt)

    def autoencoder_fn(m, cut=None):
        return autoencoder_loss(m, x[dt(m)], cut) if cut else F.mse_loss(m(x[dt(m)]),
                                                                         x[dt(m)])

    def build_twice(dt):
        layer = nn.Linear(6, 6, dtype=dt)
        return nn.Sequential(layer, nn.Tanh(), layer)

    def twice_fn(m, cut=None):
        if cut:
            return twice_loss(m, x[dt(m)], target[dt(m)], cut)
        return F.mse_loss(m(x[dt(m)]), target[dt(m)])

    auto = check(result, f"tied autoencoder 6-{hidden}-6", build_autoencoder, autoencoder_fn,
                 "encoder.weight", ("encoder", "decoder"), steps, lr, dtype)
    twice = check(result, "Sequential(layer, Tanh, layer)", build_twice, twice_fn, "0.weight",
                  ("first", "second"), steps, lr, dtype)
    described = describe("autoencoder", auto) + describe("layer applied twice", twice)
    result.sections.insert(0, ("One object, several names:", "\n".join(described)))
    result.verdict("the decoder's weight is the encoder's weight (one object), and "
                   "parameters() lists each shared parameter once",
                   auto.decoder.weight is auto.encoder.weight
                   and len(list(auto.parameters())) == 3 and len(list(twice.parameters())) == 2)
    return result


def describe(label, model):
    names = [n for n, _ in model.named_parameters()]
    return [f"  {label}: parameters() -> {names}",
            f"  {label}: tied_parameters() -> {nn.tied_parameters(model)}"]
