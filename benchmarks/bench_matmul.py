"""GFLOP/s of cygrad's exact gemm against numpy's BLAS (np.matmul), same run, interleaved.

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python benchmarks/bench_matmul.py
    python benchmarks/bench_matmul.py --quick --kernel all --threads 1

Shapes: square n = 64 ... 2048 and the three products of a dense layer 784 -> 256 on a batch of 64
(forward X @ W, weight gradient X.T @ G, input gradient G @ W.T, the transposes passed as flags,
never copied). Each sample times a batch of calls sized to take a few milliseconds; cygrad and
numpy alternate in rounds (each warmed up first: see WARM), and the table shows medians. The
kernel is called directly with a preallocated output (no Python overhead); "seam" times
`cygrad.backend.gemm` on the cython backend (validation and allocation included), n >= 256.
"""

import argparse
import datetime
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "src"))

import numpy as np  # noqa: E402

try:
    from threadpoolctl import threadpool_info, threadpool_limits
except ImportError:  # fall back to OPENBLAS_NUM_THREADS, read when numpy loads OpenBLAS
    threadpool_info = threadpool_limits = None

from cygrad._C import gemm as gemm_module  # noqa: E402

KERNELS = {"packed": gemm_module.gemm, "blocked": gemm_module.gemm_blocked,
           "naive": gemm_module.gemm_naive}
SQUARE = (64, 128, 256, 512, 1024, 2048)
# Before its samples each contender runs alone for WARM seconds. With two threads this matters:
# after a call OpenBLAS's idle threads busy-wait ~130 ms (2^28 cycles), and a kernel started
# meanwhile shares a core with them; and on this VM a core left idle comes back slowly (two
# threads ran at one core's speed for ~0.3 s after a pause).
WARM = {1: 0.05, 2: 0.4}
# (name, M, N, K, trans_a, trans_b): a dense layer 784 -> 256, batch 64
DENSE = (("fwd X@W 64x784@784x256", 64, 256, 784, False, False),
         ("dW X.T@G 784x64@64x256", 784, 256, 64, True, False),
         ("dX G@W.T 64x256@256x784", 64, 784, 256, False, True))


def shapes(quick):
    square = SQUARE[:-1] if quick else SQUARE
    return [(f"{n}x{n}x{n}", n, n, n, False, False) for n in square] + list(DENSE)


def operands(m, n, k, ta, tb, dtype, rng):
    a = rng.standard_normal((k, m) if ta else (m, k)).astype(dtype)
    b = rng.standard_normal((n, k) if tb else (k, n)).astype(dtype)
    return a, b


def sample(fn, calls):
    t = time.perf_counter()
    for _ in range(calls):
        fn()
    return (time.perf_counter() - t) / calls


def warm_up(fn, seconds):
    t = time.perf_counter()
    while time.perf_counter() - t < seconds:
        fn()


def calls_for(fn, target):
    """How many calls make one sample of about `target` seconds (at least one)."""
    fn()
    t = sample(fn, 1)
    return max(1, int(target / max(t, 1e-7)))


def blas_threads(n):
    if threadpool_limits is None:
        return _NullContext()
    return threadpool_limits(limits=n, user_api="blas")


class _NullContext:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


def measure(name, m, n, k, ta, tb, dtype, threads, kernel, reps, target, seam):
    rng = np.random.default_rng(0)
    a, b = operands(m, n, k, ta, tb, dtype, rng)
    c = np.empty((m, n), dtype)
    out = np.empty((m, n), dtype)
    oa, ob = (a.T if ta else a), (b.T if tb else b)
    fn = KERNELS[kernel]
    contenders = {"cygrad": lambda: fn(a, b, c, ta, tb, threads),
                  "numpy": lambda: np.matmul(oa, ob, out=out)}
    if seam is not None:
        contenders["seam"] = lambda: seam.gemm(a, b, ta, tb)
    times = {key: [] for key in contenders}
    with blas_threads(threads):
        calls = {key: calls_for(f, target) for key, f in contenders.items()}
        # interleaved in rounds, so that a noisy neighbour hits every contender alike
        rounds = 3
        for _ in range(rounds):
            for key, f in contenders.items():
                warm_up(f, WARM.get(threads, WARM[2]))
                for _ in range(-(-reps // rounds)):
                    times[key].append(sample(f, calls[key]))
    flops = 2.0 * m * n * k
    row = {"shape": name, "m": m, "n": n, "k": k, "trans_a": ta, "trans_b": tb,
           "dtype": np.dtype(dtype).name, "threads": threads, "kernel": kernel}
    for key, ts in times.items():
        row[f"{key}_gflops"] = flops / statistics.median(ts) / 1e9
        row[f"{key}_gflops_best"] = flops / min(ts) / 1e9
    row["ratio"] = row["cygrad_gflops"] / row["numpy_gflops"]
    return row


def seam_backend():
    """cygrad.backend on the cython backend with `threads`, or None if it is not importable."""
    try:
        from cygrad import backend
    except Exception:
        return None
    if "cython" not in backend.available():
        return None
    backend.use("cython")
    return backend


def machine_info():
    info = {"date": datetime.date.today().isoformat(), "python": platform.python_version(),
            "numpy": np.__version__, "cpu": platform.processor() or platform.machine(),
            "cores": os.cpu_count(), "command": " ".join(sys.argv)}
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    info["cpu"] = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    if threadpool_info is not None:
        info["blas"] = [{k: d.get(k) for k in ("internal_api", "version", "architecture",
                                                "threading_layer")} for d in threadpool_info()]
    info["env"] = {k: os.environ[k] for k in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE",
                                              "OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS",
                                              "OMP_WAIT_POLICY")
                   if k in os.environ}
    return info


def run_child(argv, dtype, threads):
    """Without threadpoolctl the BLAS thread count is fixed when numpy loads: one process each."""
    argv = list(sys.argv[1:] if argv is None else argv)
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "rows.json")
        env = dict(os.environ, OPENBLAS_NUM_THREADS=str(threads))
        subprocess.run([sys.executable, os.path.abspath(__file__), *argv, "--child",
                        "--dtype", dtype, "--threads", str(threads), "--json", out],
                       env=env, check=True)
        with open(out) as f:
            return json.load(f)["results"]


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--kernel", default="packed", choices=[*KERNELS, "all"])
    p.add_argument("--quick", action="store_true", help="fewer repetitions, no n = 2048")
    p.add_argument("--threads", default="1,2", help="comma-separated thread counts")
    p.add_argument("--dtype", default="float32,float64")
    p.add_argument("--reps", type=int, default=None, help="samples per contender (median)")
    p.add_argument("--json", default=os.path.join(ROOT, "benchmarks", "results",
                                                  "bench_matmul.json"))
    p.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    kernels = list(KERNELS) if args.kernel == "all" else [args.kernel]
    kernels = ["packed"] + [k for k in kernels if k != "packed"] if "packed" in kernels else kernels
    reps = args.reps or (5 if args.quick else 11)
    target = 0.01 if args.quick else 0.03
    info = machine_info()
    for key in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE"):
        if key in os.environ:
            print(f"warning: {key}={os.environ[key]} is set and may slow OpenBLAS; "
                  f"run with `env -u {key}`", file=sys.stderr)
    if not args.child and hasattr(os, "getloadavg") and os.getloadavg()[0] > 0.5:
        print(f"warning: load average {os.getloadavg()[0]:.2f}: other work shares the cores; "
              "numbers (2 threads above all) will be noisy", file=sys.stderr)
    if not args.child:
        print(f"# {info['cpu']}, {info['cores']} cores; numpy {info['numpy']}; "
              f"BLAS {info.get('blas', 'unknown (no threadpoolctl)')}")
    seam = seam_backend()
    rows = []
    head = (f"{'shape':26s} {'dtype':7s} {'thr':>3s} {'kernel':8s} {'cygrad':>8s} "
            f"{'numpy':>8s} {'ratio':>6s} {'seam':>8s}")
    if not args.child:
        print(head)
        print("-" * len(head))
    for dtype in args.dtype.split(","):
        for threads in [int(t) for t in args.threads.split(",")]:
            if threadpool_limits is None and os.environ.get("OPENBLAS_NUM_THREADS") != str(threads):
                rows += run_child(argv, dtype, threads)
                continue
            if seam is not None:
                seam.set_num_threads(threads)
            for name, m, n, k, ta, tb in shapes(args.quick):
                for kernel in kernels:
                    slow = kernel != "packed" and m * n * k > 1024 ** 3
                    if slow:  # the reference variants at 2048 would take minutes
                        continue
                    use_seam = seam if kernel == "packed" and min(m, n, k) >= 256 else None
                    row = measure(name, m, n, k, ta, tb, dtype, threads, kernel,
                                  reps, target, use_seam)
                    rows.append(row)
                    s = f"{row['seam_gflops']:8.1f}" if "seam_gflops" in row else f"{'':8s}"
                    print(f"{name:26s} {row['dtype']:7s} {threads:3d} {kernel:8s} "
                          f"{row['cygrad_gflops']:8.1f} {row['numpy_gflops']:8.1f} "
                          f"{row['ratio']:6.2f} {s}", flush=True)
    if args.json:
        os.makedirs(os.path.dirname(os.path.abspath(args.json)), exist_ok=True)
        with open(args.json, "w") as f:
            json.dump({"machine": info, "results": rows}, f, indent=1)
        if not args.child:
            print(f"# saved {args.json}")


if __name__ == "__main__":
    main()
