"""The cygrad command line: `python -m cygrad demo [scenario]` (or the `cygrad` script), `trace`,
`config`, `bench`."""

import argparse
import sys


class _Parser(argparse.ArgumentParser):
    """Bad arguments: one line and exit status 2, never a traceback."""

    def error(self, message):
        self.exit(2, f"cygrad: error: {message}\n")


def _positive(text):
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def _non_negative(text):
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more, got {value}")
    return value


def build_parser():
    from .demos import DEFAULT, SCENARIOS

    parser = _Parser(prog="cygrad", description="cygrad: exact autodiff, and weight symmetry "
                                                "made visible")
    commands = parser.add_subparsers(dest="command", parser_class=_Parser)
    demo = commands.add_parser("demo", help="run a symmetry scenario (default: spirals)")
    demo.add_argument("scenario", nargs="?", default=DEFAULT,
                      help=f"one of: {', '.join(SCENARIOS)}")
    demo.add_argument("--list", action="store_true", help="list the scenarios and exit")
    demo.add_argument("--backend", choices=["cython", "numpy"], default="cython")
    demo.add_argument("--dtype", choices=["float32", "float64"], default="float32")
    demo.add_argument("--steps", type=_non_negative, help="training steps")
    demo.add_argument("--width", type=_positive, help="hidden layer width")
    demo.add_argument("--seed", type=_non_negative, default=0)
    demo.add_argument("--plot", metavar="DIR", help="also write PNG figures to DIR")
    runner = commands.add_parser("run", help="run a PyTorch program on cygrad, unedited "
                                 "(`import torch` gives cygrad)")
    runner.add_argument("program", help="the program's path")
    runner.add_argument("args", nargs=argparse.REMAINDER, help="its arguments")
    trace = commands.add_parser("trace", help="print the backward trace of one training step")
    trace.add_argument("scenario", nargs="?", default="constant-init",
                       help=f"one of: {', '.join(SCENARIOS)} (default constant-init, S1)")
    trace.add_argument("--dtype", choices=["float32", "float64"], default="float32")
    trace.add_argument("--backend", choices=["cython", "numpy"], default="cython")
    trace.add_argument("--dot", metavar="FILE", help="also write the annotated graph (DOT)")
    config = commands.add_parser("config", help="show how cygrad was built (compiler, flags, "
                                                "OpenMP, FMA) and numpy's BLAS")
    config.add_argument("--json", action="store_true", help="print it as JSON")
    bench = commands.add_parser("bench", help="print the benchmark table: training steps, eager "
                                "and compiled, against numpy, PyTorch and JAX where installed, "
                                "and gemm GFLOP/s against OpenBLAS and the measured peak of "
                                "one core; --plot PNG draws them (benchmarks/run.py of a "
                                "source checkout)")
    bench.add_argument("options", nargs=argparse.REMAINDER,
                       help=f"benchmarks/run.py's options (default: {' '.join(BENCH_DEFAULT)}; "
                            "results go to a temporary directory unless --out is given)")
    return parser


BENCH_DEFAULT = ("--quick", "--threads", "1", "--only", "tiny,mnist,conv,op,gemm")


def bench_script():
    """benchmarks/run.py of the source tree this cygrad runs from (an editable install), else
    of the current directory (a checkout with cygrad installed from it), else None."""
    import os

    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    for base in (root, os.getcwd()):
        path = os.path.join(base, "benchmarks", "run.py")
        if os.path.exists(path):
            return path
    return None


def run_bench(options, parser):
    """benchmarks/run.py's measurements, then its markdown table."""
    import importlib.util
    import os
    import tempfile

    path = bench_script()
    if path is None:
        parser.exit(1, "cygrad: error: the benchmarks ship with cygrad's source tree, not its "
                       "wheel: run `python -m cygrad bench` in a checkout (or after pip install "
                       "-e .)\n")
    spec = importlib.util.spec_from_file_location("cygrad_benchmarks", path)
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    options = list(options) or list(BENCH_DEFAULT)
    with tempfile.TemporaryDirectory() as tmp:
        if "--out" not in options:
            options += ["--out", tmp]
        status = bench.main(options)
        out = options[options.index("--out") + 1]
        with open(os.path.join(out, "latest.md")) as f:
            print()
            print(f.read())
    print("(through `python -m cygrad`, cygrad was imported before PyTorch, whose OpenMP runtime "
          "then starts with cygrad's OMP_WAIT_POLICY=PASSIVE and GOMP_SPINCOUNT=30000; `python "
          "benchmarks/run.py` imports PyTorch first)")
    return status


def run_trace(args, parser):
    from . import backend, viz
    from .demos import SCENARIOS, traces

    if args.scenario not in SCENARIOS:
        parser.error(f"unknown scenario {args.scenario!r}; choose from {', '.join(SCENARIOS)}")
    with backend.using(args.backend):
        model, title, loss, t = traces.trace_step(args.scenario, args.dtype)
    scenario = SCENARIOS[args.scenario][0]
    print(f"{scenario}: one backward step of {title}")
    if args.scenario == "constant-init":
        print("\n".join(traces.s1_forward(model)))
    print(f"loss = {loss.item():.6g}")
    print()
    print(t)
    if args.scenario == "constant-init":
        print()
        print("Hand derivation against the trace:")
        for claim, holds in traces.s1_checks(model, t):
            print(f"  {claim}: {'yes, bitwise' if holds else 'NO'}")
    if args.dot:
        with open(args.dot, "w") as f:
            f.write(viz.to_dot(loss, values=True, grads=True, model=model))
        print(f"graph written to {args.dot} (render: dot -Tsvg {args.dot} -o graph.svg)")
    return 0


def main(argv=None):
    from . import demos

    parser = build_parser()
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv[:1] == ["bench"] and argv[1:2] not in (["-h"], ["--help"]):
        return run_bench(argv[1:], parser)  # its options are benchmarks/run.py's
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 0
    if args.command == "trace":
        return run_trace(args, parser)
    if args.command == "config":
        from ._config import show_config

        if args.json:
            import json

            print(json.dumps(show_config(mode="dicts"), indent=1))
        else:
            show_config()
        return 0
    if args.command == "run":
        from . import as_torch

        as_torch.run(args.program, args.args)
        return 0
    if args.list:
        for name, (scenario, _, summary) in demos.SCENARIOS.items():
            print(f"{scenario:<4s} {name:14s} {summary}")
        return 0
    if args.scenario not in demos.SCENARIOS:
        parser.error(f"unknown scenario {args.scenario!r}; choose from "
                     f"{', '.join(demos.SCENARIOS)} (or --list)")
    if args.plot:
        try:
            import matplotlib  # noqa: F401
        except ImportError:
            parser.error("--plot needs matplotlib: pip install 'cygrad[plot]'")
    options = demos.Options(backend=args.backend, dtype=args.dtype, steps=args.steps,
                            width=args.width, plot=args.plot, seed=args.seed)
    try:
        result = demos.run(args.scenario, options)
    except (ValueError, RuntimeError) as exc:
        parser.exit(1, f"cygrad: error: {exc}\n")
    print(result.render())
    return 0


def run():
    """Entry point: main() with a quiet exit when the reader closes the pipe (`| head`)."""
    try:
        return main()
    except BrokenPipeError:
        import os

        # Point stdout at /dev/null so Python's final flush does not fail again.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1


if __name__ == "__main__":
    sys.exit(run())
