"""Benchmark: kexue_helpers.jl.pairwise_distortion, time and peak memory.

Prints, side by side in one run:
1. at a size where the dense reference fits, our blocked computation against
   scipy.spatial.distance.pdist on both point sets (the obvious implementation), with the
   ratio of times and the largest relative difference of the ratios;
2. the issue's target: 20,000 points in 1,000 dimensions projected to 100 dimensions
   (199,990,000 pairs), our time and peak memory (must stay under 1 GB).

Each case runs in a fresh subprocess so that its peak resident memory (ru_maxrss) is its
own; the memory reported is the peak minus the resident size just before the call (the
input data included in the baseline).

Usage: python benchmarks/bench_pairwise_distortion.py [--quick]
"""

from __future__ import annotations

import argparse
import json
import platform
import subprocess
import sys
import time

CASE = r"""
import json, resource, sys, time
import numpy as np, torch
from kexue_helpers import jl
n, m, k, impl, block = (int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), sys.argv[4],
                        int(sys.argv[5]))
rng = np.random.default_rng(0)
x = rng.standard_normal((n, m))
y = jl.gaussian_projection(x, k, seed=1, device="cpu")
def rss_mb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
base = rss_mb()
t0 = time.perf_counter()
if impl == "ours":
    s = jl.pairwise_distortion(x, y, eps=0.1, block_size=block, device="cpu")
    out = dict(min=s.min, max=s.max, frac=s.fraction_outside(0.1), n_pairs=s.n_pairs)
else:
    from scipy.spatial.distance import pdist
    r = pdist(y, "sqeuclidean") / pdist(x, "sqeuclidean")
    out = dict(min=float(r.min()), max=float(r.max()),
               frac=float(np.mean((r < 0.9) | (r > 1.1))), n_pairs=int(r.size))
out["seconds"] = time.perf_counter() - t0
out["peak_mb"] = rss_mb() - base
out["threads"] = torch.get_num_threads()
print(json.dumps(out))
"""


def run(n: int, m: int, k: int, impl: str, block: int = 1024) -> dict:
    res = subprocess.run([sys.executable, "-c", CASE, str(n), str(m), str(k), impl, str(block)],
                         capture_output=True, text=True, check=True)
    return json.loads(res.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="smaller sizes, for a smoke run")
    args = ap.parse_args()
    n_ref, n_big = (1_500, 4_000) if args.quick else (5_000, 20_000)
    print(f"machine: {platform.machine()}, python {platform.python_version()}")

    ours, ref = run(n_ref, 1000, 100, "ours"), run(n_ref, 1000, 100, "scipy")
    print(f"\n[1] {n_ref} points, 1000 -> 100 dims, {ours['n_pairs']:,} pairs "
          f"(torch threads: {ours['threads']})")
    print(f"{'':>24}{'seconds':>10}{'peak MB':>10}{'min ratio':>12}{'max ratio':>12}")
    for name, r in (("ours (blocked, float64)", ours), ("scipy pdist (dense)", ref)):
        print(f"{name:>24}{r['seconds']:>10.2f}{r['peak_mb']:>10.0f}{r['min']:>12.6f}"
              f"{r['max']:>12.6f}")
    print(f"time ratio scipy/ours: {ref['seconds'] / ours['seconds']:.2f}; memory ratio "
          f"scipy/ours: {ref['peak_mb'] / max(ours['peak_mb'], 1):.1f}; "
          f"largest relative difference of min/max: "
          f"{max(abs(ours['min'] / ref['min'] - 1), abs(ours['max'] / ref['max'] - 1)):.1e}")

    big = run(n_big, 1000, 100, "ours")
    print(f"\n[2] {n_big} points, 1000 -> 100 dims, {big['n_pairs']:,} pairs")
    print(f"ours: {big['seconds']:.1f} s, peak memory above the data: {big['peak_mb']:.0f} MB "
          f"({'under' if big['peak_mb'] < 1024 else 'OVER'} the 1 GB budget); "
          f"ratios in [{big['min']:.4f}, {big['max']:.4f}], "
          f"fraction outside 1 +- 0.1: {big['frac']:.4f}")


if __name__ == "__main__":
    main()
