"""Benchmark: the applications of the Johnson-Lindenstrauss lemma, side by side as ratios.

Prints, in one run:
1. dense (Gaussian) against sparse (Li et al., density 1/sqrt(m)) random projection: the time
   to draw the matrix and the time to project a batch of points (v -> A v, points as columns),
   with kexue_helpers.jl.gaussian_matrix / sparse_matrix, and the ratio of multiplications;
   scikit-learn's GaussianRandomProjection / SparseRandomProjection fit_transform for reference;
2. truncated SVD: kexue_helpers.jl.randomized_svd against
   sklearn.utils.extmath.randomized_svd (same rank, oversampling, power iterations, QR
   normaliser) and against a full SVD (torch.linalg.svd), with the error relative to the
   optimal rank-k error.

Every time is the best of several interleaved runs. The machine's load average is printed,
since on a shared machine timings are inflated.

Usage: python benchmarks/bench_jl_applications.py [--quick] [--device cpu|cuda]
"""

from __future__ import annotations

import argparse
import math
import os
import platform
import time
import warnings

import numpy as np
import torch
from sklearn.datasets import make_low_rank_matrix
from sklearn.random_projection import GaussianRandomProjection, SparseRandomProjection
from sklearn.utils.extmath import randomized_svd as sk_randomized_svd

from kexue_helpers import get_device, jl

warnings.filterwarnings("ignore", message="Sparse CSR tensor support is in beta state")


def best_of(fns: dict, repeats: int, device: torch.device) -> dict:
    """Best wall-clock time of each function, the functions run interleaved."""
    times = {k: math.inf for k in fns}
    for _ in range(repeats):
        for k, fn in fns.items():
            if device.type == "cuda":
                torch.cuda.synchronize()
            t0 = time.perf_counter()
            fn()
            if device.type == "cuda":
                torch.cuda.synchronize()
            times[k] = min(times[k], time.perf_counter() - t0)
    return times


def bench_projection(m: int, n: int, batch: int, repeats: int, device: torch.device) -> None:
    gen = torch.Generator().manual_seed(0)
    v = torch.randn(m, batch, generator=gen, dtype=torch.float32).to(device)
    a_d = jl.gaussian_matrix(n, m, seed=0, dtype=torch.float32, device=device)
    a_s = jl.sparse_matrix(n, m, seed=0, dtype=torch.float32, device=device)
    t = best_of({
        "draw dense": lambda: jl.gaussian_matrix(n, m, seed=0, dtype=torch.float32, device=device),
        "draw sparse": lambda: jl.sparse_matrix(n, m, seed=0, dtype=torch.float32, device=device),
        "multiply dense": lambda: a_d @ v,
        "multiply sparse": lambda: torch.sparse.mm(a_s, v),
    }, repeats, device)
    x = v.T.cpu().numpy()
    t_sk = best_of({
        "sklearn dense": lambda: GaussianRandomProjection(n, random_state=0).fit_transform(x),
        "sklearn sparse": lambda: SparseRandomProjection(n, random_state=0).fit_transform(x),
    }, repeats, torch.device("cpu"))
    mult = n * m / a_s.values().numel()
    print(f"\n[projection] m = {m}, n = {n}, batch = {batch}, float32, device {device}")
    print(f"  multiplications, dense / sparse: {mult:.1f}")
    for what in ("draw", "multiply"):
        d, s = t[f"{what} dense"], t[f"{what} sparse"]
        print(f"  {what:>8}: dense {d * 1e3:8.2f} ms  sparse {s * 1e3:8.2f} ms  "
              f"dense/sparse {d / s:6.1f}")
    d, s = t_sk["sklearn dense"], t_sk["sklearn sparse"]
    print(f"  sklearn fit_transform (CPU): dense {d * 1e3:8.2f} ms  sparse {s * 1e3:8.2f} ms  "
          f"dense/sparse {d / s:6.1f}")


def bench_svd(rows: int, cols: int, rank: int, repeats: int, device: torch.device) -> None:
    m_np = make_low_rank_matrix(n_samples=rows, n_features=cols, effective_rank=rank,
                                tail_strength=0.5, random_state=0)
    m_t = torch.from_numpy(m_np).to(device)
    s_exact = np.linalg.svd(m_np, compute_uv=False)
    opt = math.sqrt((s_exact[rank:] ** 2).sum())
    print(f"\n[randomized SVD] {rows} x {cols}, rank {rank}, oversample 10, float64, "
          f"device {device}")
    t_full = best_of({"full": lambda: torch.linalg.svd(m_t, full_matrices=False)},
                     max(1, repeats // 2), device)["full"]
    print(f"  full SVD (torch): {t_full * 1e3:.1f} ms")
    for q in (0, 1, 2, 4):
        ours = lambda: jl.randomized_svd(m_t, rank, n_iter=q, seed=0)  # noqa: E731
        theirs = lambda: sk_randomized_svd(m_np, rank, n_oversamples=10, n_iter=q,  # noqa: E731
                                           power_iteration_normalizer="QR", random_state=0)
        t = best_of({"ours": ours, "sklearn": theirs}, repeats, device)
        u, s, vh = ours()
        err = float((m_t - (u * s) @ vh).norm()) / opt
        u2, s2, vh2 = theirs()
        err2 = float(np.linalg.norm(m_np - (u2 * s2) @ vh2)) / opt
        print(f"  q = {q}: ours {t['ours'] * 1e3:8.1f} ms (error/optimal {err:.4f})  "
              f"sklearn {t['sklearn'] * 1e3:8.1f} ms ({err2:.4f})  "
              f"sklearn/ours {t['sklearn'] / t['ours']:5.1f}  full/ours {t_full / t['ours']:6.1f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller sizes, fewer repeats")
    parser.add_argument("--device", default=None, help="torch device (default: the helpers')")
    args = parser.parse_args()
    device = get_device(args.device)
    load = os.getloadavg() if hasattr(os, "getloadavg") else (float("nan"),) * 3
    print(f"python {platform.python_version()}, torch {torch.__version__}, "
          f"threads {torch.get_num_threads()}, cpus {os.cpu_count()}, "
          f"load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")
    repeats = 3 if args.quick else 7
    if args.quick:
        bench_projection(2**14, 256, 500, repeats, device)
        bench_svd(1000, 600, 20, repeats, device)
    else:
        bench_projection(2**14, 256, 2000, repeats, device)
        bench_projection(2**16, 512, 1000, repeats, device)
        bench_svd(2000, 1000, 20, repeats, device)
        bench_svd(4000, 2000, 50, repeats, device)


if __name__ == "__main__":
    main()
