"""Benchmark of kexue_helpers.hsic: time against hyppo, and time and peak memory at large n.

Run from the repository root:

    python benchmarks/bench_hsic.py | tee benchmarks/results/hsic_cpu.txt

Part 1 times the HSIC statistic against ``hyppo.independence.Hsic().statistic`` (after
hyppo's numba compilation) at n = 1,000 ... 8,000, for two versions of ours: the default
``hsic(x, y)`` (biased estimator, bandwidths from the subsampled median heuristic) and the
exact equivalent of hyppo's statistic (normalised unbiased HSIC, hyppo's bandwidth computed
from all pairwise distances), and checks that the latter equals hyppo's value.
Part 2 runs ``hsic(x, y)`` at larger n, each in a fresh subprocess, and reports its time
and peak resident memory above the baseline of the process (torch loaded, data in memory),
for several tile sizes, next to the memory two dense n x n float64 kernel matrices need.
The machine's load average is printed before and after: other processes on a shared
machine inflate every time reported here.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import time

import numpy as np
import torch


def _data(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 1))
    y = np.cos(2 * x) + 0.5 * rng.normal(size=(n, 1))
    return x, y


def _best_of(fn, repeats: int) -> tuple[float, object]:
    best, out = float("inf"), None
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t0)
    return best, out


def _rss_mib() -> float:
    """Peak resident memory of this process so far, in MiB.

    Linux's VmHWM belongs to the address space, so it starts afresh in a new process;
    ru_maxrss (the fallback elsewhere) is inherited across exec from the parent.
    """
    try:
        with open("/proc/self/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024.0                      # kB
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0       # Linux: KiB


def worker(n: int, tile: int) -> None:
    """One large-n measurement in this (fresh) process; prints a JSON line."""
    from kexue_helpers import hsic

    x, y = _data(n, seed=1)
    xt, yt = torch.from_numpy(x), torch.from_numpy(y)
    hsic.hsic(xt[:200], yt[:200], tile=min(tile, 200), device="cpu")   # warm up torch
    base = _rss_mib()
    t0 = time.perf_counter()
    value = hsic.hsic(xt, yt, tile=tile, device="cpu")
    seconds = time.perf_counter() - t0
    print(json.dumps(dict(n=n, tile=tile, seconds=seconds, value=value,
                          peak_mib=_rss_mib() - base)))


def main(repeats: int) -> None:
    import hyppo
    from hyppo.independence import Hsic

    from kexue_helpers import hsic

    print("HSIC benchmark: kexue_helpers.hsic vs hyppo.independence.Hsic")
    print(f"python {platform.python_version()}, torch {torch.__version__}, "
          f"hyppo {hyppo.__version__}, numpy {np.__version__}; "
          f"{os.cpu_count()} CPU cores, torch threads {torch.get_num_threads()}")
    print(f"load average at start (1, 5, 15 min): {os.getloadavg()}")
    print()
    print("Part 1: the statistic, best of", repeats, "runs (seconds); hyppo after JIT warm-up")
    t0 = time.perf_counter()
    xw, yw = _data(50)
    Hsic().statistic(xw, yw)
    print(f"(hyppo's numba warm-up took {time.perf_counter() - t0:.1f} s)")
    print("'ours, default' is hsic(x, y), which on the CPU runs on one thread "
          "(kexue_helpers.hsic.CPU_THREADS = 1), like hyppo's numba code;")
    print(f"'torch threads' is the same with CPU_THREADS = None ({torch.get_num_threads()} "
          "threads here);")
    print("'hyppo conv.' computes hyppo's exact statistic, including its median over all "
          "n(n-1)/2 distances.")
    header = (f"{'n':>6} {'hyppo':>9} {'ours, default':>14} {'ratio':>7} {'torch threads':>14} "
              f"{'ratio':>7} {'hyppo conv.':>12} {'ratio':>7} {'|ours - hyppo|':>15}")
    print(header)
    for n in (1_000, 2_000, 4_000, 8_000):
        x, y = _data(n)
        t_h, v_h = _best_of(lambda: Hsic().statistic(x, y), repeats)
        t_d, _ = _best_of(lambda: hsic.hsic(x, y, device="cpu"), repeats)
        hsic.CPU_THREADS = None
        t_1, _ = _best_of(lambda: hsic.hsic(x, y, device="cpu"), repeats)
        hsic.CPU_THREADS = 1

        def hyppo_convention():
            s = hsic.median_heuristic(x, nonzero=False, max_points=None, device="cpu")
            return hsic.hsic(x, y, sigma_x=s, sigma_y=s, estimator="unbiased",
                             normalized=True, device="cpu")

        t_c, v_c = _best_of(hyppo_convention, repeats)
        gap = abs(float(v_c) - float(v_h))
        assert gap < 1e-9, f"our hyppo-convention statistic differs from hyppo's by {gap}"
        print(f"{n:>6} {t_h:>9.3f} {t_d:>14.4f} {t_h / t_d:>6.1f}x {t_1:>14.4f} "
              f"{t_h / t_1:>6.1f}x {t_c:>12.4f} {t_h / t_c:>6.1f}x {gap:>15.1e}", flush=True)
    print()
    print("Part 2: ours at large n, one fresh process per row (time in s, peak memory above "
          "baseline in MiB)")
    print(f"{'n':>7} {'tile':>6} {'seconds':>9} {'peak MiB':>9} {'dense K and L, MiB':>19}")
    for n, tile in ((20_000, 256), (20_000, 1024), (20_000, 4096), (50_000, 512)):
        out = subprocess.run([sys.executable, __file__, "--worker", str(n), str(tile)],
                             check=True, capture_output=True, text=True).stdout
        r = json.loads(out.strip().splitlines()[-1])
        dense = 2 * n * n * 8 / 2**20
        print(f"{n:>7} {tile:>6} {r['seconds']:>9.2f} {r['peak_mib']:>9.1f} {dense:>19.0f}",
              flush=True)
    print()
    print(f"load average at end (1, 5, 15 min): {os.getloadavg()}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--worker", nargs=2, type=int, metavar=("N", "TILE"),
                        help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(*args.worker)
    else:
        main(args.repeats)
