"""S3. Zero weights, random biases: the gradient wavefront.

Layer k's weight gradient is (error at layer k) x (activations of layer k-1), and the error at
layer k is the error at layer k+1 passed back through W_{k+1}. With every W zero, only the
output layer sees an error at step 1; once W_L is non-zero, layer L-1 sees one at step 2, and
so on: the front moves back one layer per step, and the first layer learns at step L. Until
then every hidden activation is tanh(bias), the same for every input.
"""

import numpy as np

from .. import data, nn, optim, tensor
from ..symmetry import SymmetryMonitor
from . import Result, every, mlp, table

DEPTH = 5  # weight layers
THRESHOLD = 0.5  # "has learned something": cross-entropy below this (chance is ln 2 = 0.693)


def zero_weights_random_biases(model):
    for m in model.modules():
        if isinstance(m, nn.Linear):
            nn.init.zeros_(m.weight)
            nn.init.normal_(m.bias, 0.0, 1.0)
    return model


def train(model, X, y, steps, lr, monitored=True):
    """Full-batch plain SGD on cross-entropy. Returns the monitor, the loss before each step
    (and after the last), and per step: (max |W| of the first layer, number of distinct
    output rows)."""
    opt = optim.SGD(model.parameters(), lr=lr)
    monitor = SymmetryMonitor(model) if monitored else None
    if monitored:
        monitor.attach(opt)
    first = next(m for m in model.modules() if isinstance(m, nn.Linear))
    x, losses, outputs = tensor(X), [], []
    for step in range(steps + 1):
        logits = model(x)
        loss = nn.functional.cross_entropy(logits, y)
        losses.append(loss.item())
        rows = np.unique(np.asarray(logits._data), axis=0)
        outputs.append((float(np.abs(first.weight._data).max()), len(rows)))
        if step == steps:
            break
        opt.zero_grad()
        loss.backward()
        opt.step()
    return monitor, losses, outputs


def picture(monitor, steps):
    """Layers x steps: '#' where the layer's weight gradient was non-zero, '.' where zero."""
    names = [n for n, _ in monitor.layers]
    shown = monitor.history[1:steps + 1]
    lines = ["  layer  step " + "".join(str(h["step"] % 10) for h in shown)]
    for k, name in enumerate(names):
        marks = "".join("#" if h["layers"][name]["grads"]["weight"]["status"] == "nonzero"
                        else "." for h in shown)
        lines.append(f"  {k + 1:>5} ({name:>2})  {marks}")
    return "\n".join(lines)


def first_below(losses, threshold):
    return next((s for s, value in enumerate(losses) if value < threshold), None)


def run(options):
    steps = 200 if options.steps is None else options.steps
    width = 16 if options.width is None else options.width
    dtype, lr, L = options.dtype, 0.2, DEPTH
    sizes = [2] + [width] * (L - 1) + [2]
    arch = "-".join(map(str, sizes))
    result = Result("S3", "Zero weights, random biases: the gradient wavefront",
                    f"in a {arch} tanh MLP ({L} weight layers) with every weight zero and random "
                    f"biases, plain SGD gives layer {L} (the output layer) the only non-zero "
                    f"weight gradient at step 1; layer {L}-k gets its first at step k+1, so the "
                    f"first layer learns at step {L}; until then every input gives the same "
                    "output. Learning is slow at the start compared with random weights.")
    X, y = data.moons(200, seed=options.seed, dtype=dtype)
    zero = zero_weights_random_biases(mlp(sizes, dtype=dtype))
    random = mlp(sizes, dtype=dtype)
    monitor, z_losses, z_outputs = train(zero, X, y, steps, lr)
    _, r_losses, _ = train(random, X, y, steps, lr, monitored=False)

    names = [n for n, _ in monitor.layers]
    shown = min(steps, L + 5)
    result.add(f"Non-zero weight gradient per layer ('#') over the first {shown} steps "
               f"(moons, 200 points, SGD lr {lr}, {dtype}):", picture(monitor, shown))
    first = monitor.first_nonzero_grad
    expected = {name: (L - k if L - k <= steps else None) for k, name in enumerate(names)}
    result.add("First step with a non-zero weight gradient:", table(
        ["layer", "first non-zero gradient", "theory"],
        [[f"{k + 1} ({n})", "never" if first[n] is None else first[n],
          "-" if expected[n] is None else expected[n]] for k, n in enumerate(names)]))
    if steps:
        at_one = [n for n in names if monitor.history[1]["layers"][n]["grads"]["weight"]
                  ["status"] == "nonzero"]
        result.verdict(f"step 1: only layer {L} has a non-zero weight gradient",
                       at_one == [names[-1]], f"non-zero at step 1: layers "
                       f"{[names.index(n) + 1 for n in at_one]}")
    late = [k + 1 for k, n in enumerate(names) if expected[n] is not None
            and (first[n] is None or first[n] > expected[n])]
    why = (f"; layers {late} came late: their gradient was exactly 0, most likely underflow "
           f"in {dtype} (it is a product of still tiny weights)" if late else "")
    result.verdict(f"layer {L}-k first gets a non-zero weight gradient at step k+1 "
                   f"(within {steps} steps)", all(first[n] == expected[n] for n in names),
                   "measured " + ", ".join("never" if first[n] is None else str(first[n])
                                           for n in names) + why)
    if steps >= L:
        result.verdict(f"the first layer first learns at step {L}", first[names[0]] == L,
                       f"step {first[names[0]]}")

    frozen = [s for s, (w_max, _) in enumerate(z_outputs) if w_max == 0]
    same = all(z_outputs[s][1] == 1 for s in frozen)
    result.verdict(f"every input gives the same output while the first layer's weights are "
                   f"zero (steps 0 to {frozen[-1]})", same)

    rows = []
    for step in sorted(set(every(steps)) | set(range(min(steps, L + 2) + 1))):
        rows.append([step, z_losses[step], z_outputs[step][1], z_outputs[step][0],
                     monitor.widths(names[0])[step], r_losses[step]])
    result.add("Loss before each step, zero weights + random biases against PyTorch's random "
               "init (same data); 'outputs' = distinct output rows over the 200 inputs:",
               table(["step", "zero W: loss", "outputs", "max|W1|", "width of layer 1",
                      "random W: loss"], rows, [None, ".4f", None, ".1e", None, ".4f"]))
    z_at, r_at = first_below(z_losses, THRESHOLD), first_below(r_losses, THRESHOLD)
    if steps > L and z_at is None:
        growth = (z_outputs[-1][0] - z_outputs[L][0]) / (steps - L)
        distinct = z_outputs[-1][1]
        result.add("Why so slow:", "  the zero-weight network fits the class balance with its "
                   "biases, then sits near a saddle (at the end "
                   + ("every input still gets the same output" if distinct == 1 else
                      f"{distinct} distinct outputs") + f"): its first layer's largest weight "
                   f"grew by only {growth:.1e} per step after step {L}.")
    if r_at is None:
        result.add("Speed:", f"  the randomly initialised network did not reach loss "
                   f"{THRESHOLD} within {steps} steps; run more steps to compare.")
    else:
        reached = (f"at step {z_at}" if z_at is not None else
                   f"not within {steps} steps (final loss {z_losses[-1]:.4f})")
        result.verdict("zero weights learn far slower at the start (5x the steps or more)",
                       z_at is None or z_at >= 5 * r_at,
                       f"loss below {THRESHOLD}: random weights at step {r_at}, zero weights "
                       + reached, exact=False)
    if options.plot:
        path = f"{options.plot}/wavefront"
        result.figures += monitor.plot(path, title="zero weights, random biases")
        result.figures.append(plot_front(monitor, shown, path))
    return result



def plot_front(monitor, steps, path):
    """The first `steps` steps of the wavefront, layer 1 at the top."""
    import os

    from matplotlib.figure import Figure  # not pyplot: leave the user's backend alone

    names = [n for n, _ in monitor.layers]
    picture = [[h["layers"][n]["grads"]["weight"]["status"] == "nonzero"
                for h in monitor.history[1:steps + 1]] for n in names]
    fig = Figure(figsize=(6, 0.5 * len(names) + 1.5))
    ax = fig.subplots()
    ax.imshow(np.array(picture, dtype=float), aspect="auto", cmap="Greys", vmin=0, vmax=1,
              extent=(0.5, steps + 0.5, len(names) + 0.5, 0.5))
    ax.set_yticks(range(1, len(names) + 1), [f"layer {k + 1}" for k in range(len(names))])
    ax.set_xticks(range(1, steps + 1))
    ax.set(xlabel="step", title="non-zero weight gradient (black)")
    fig.tight_layout()
    name = os.path.join(path, "wavefront_first_steps.png")
    fig.savefig(name, dpi=100)
    return name
