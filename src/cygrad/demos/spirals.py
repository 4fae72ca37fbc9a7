"""S8. Why a layer learns different features: constant against random initialisation on the
two-spirals task. The constant-initialised network stays at effective width 1 and cannot fit;
the randomly initialised one fits."""

from .. import data, nn, optim, tensor
from ..symmetry import SymmetryMonitor
from . import Result, accuracy, every, mlp, set_constant, table


def train(model, X, y, steps, lr):
    """Full-batch Adam on cross-entropy; returns the monitor and {step: (loss, accuracy)}."""
    monitor = SymmetryMonitor(model)
    opt = monitor.attach(optim.Adam(model.parameters(), lr=lr))
    x = tensor(X)
    curve = {}
    for step in range(steps + 1):
        logits = model(x)
        loss = nn.functional.cross_entropy(logits, y)
        curve[step] = (loss.item(), accuracy(logits, y))
        if step == steps:
            break
        opt.zero_grad()
        loss.backward()
        opt.step()
    return monitor, curve


def run(options):
    steps = 600 if options.steps is None else options.steps
    width = 32 if options.width is None else options.width
    X, y = data.spirals(200, noise=0.1, seed=options.seed, dtype=options.dtype)
    sizes = [2, width, width, 2]
    result = Result("S8", "Why a layer learns different features",
                    f"on two spirals, a 2-{width}-{width}-2 tanh MLP with constant "
                    "initial weights stays at effective width 1 per hidden layer and cannot fit; "
                    "the same network randomly initialised (PyTorch's default) fits.")
    constant = set_constant(mlp(sizes, dtype=options.dtype), lambda m: 1.0 / m.in_features, 0.0)
    random = mlp(sizes, dtype=options.dtype)
    runs = {"constant": train(constant, X, y, steps, 0.02),
            "random": train(random, X, y, steps, 0.02)}
    names = [n for n, _ in runs["constant"][0].layers][:-1]
    rows = []
    for step in every(steps):
        row = [step]
        for label in ("constant", "random"):
            monitor, curve = runs[label]
            widths = "/".join(str(monitor.widths(n)[step]) for n in names)
            row += [widths, curve[step][0], f"{100 * curve[step][1]:.1f}%"]
        rows.append(row)
    result.add(f"Training, full-batch Adam lr 0.02, 200 points ({options.dtype}); width = "
               "distinct units per hidden layer:",
               table(["step", "constant: width", "loss", "accuracy", "random: width", "loss",
                      "accuracy"], rows, [None, None, ".4f", None, None, ".4f", None]))
    for label in ("constant", "random"):
        result.add(f"Symmetry monitor, {label} initialisation:",
                   runs[label][0].report(every=max(1, steps // 5)))
    c_monitor, c_curve = runs["constant"]
    r_monitor, r_curve = runs["random"]
    one_unit = all(max(c_monitor.widths(n)) == 1 for n in names)
    result.verdict(f"constant init: every hidden layer has 1 distinct unit at every one of "
                   f"{steps} steps", one_unit)
    result.verdict("constant init cannot fit (final accuracy below 80%)",
                   c_curve[steps][1] < 0.8, f"final {100 * c_curve[steps][1]:.1f}%",
                   exact=False)
    result.verdict("random init fits (accuracy at least 97%)", r_curve[steps][1] >= 0.97,
                   f"final {100 * r_curve[steps][1]:.1f}%", exact=False)
    result.verdict(f"random init: all {width} units of every hidden layer distinct from step 0",
                   all(min(r_monitor.widths(n)) == width for n in names))
    if options.plot:
        result.figures += c_monitor.plot(f"{options.plot}/spirals-constant",
                                         title="constant init")
        result.figures += r_monitor.plot(f"{options.plot}/spirals-random", title="random init")
    return result
