"""Benchmark of the browser test: this checkout's design against an earlier commit's, side by side.

Run from the repository root, with the site built (``_build/html``):

    python benchmarks/bench_browser.py --reference bd587b0~1 --pages hsic rope_beta_base \\
        | tee -a benchmarks/results/browser_phase.txt

It checks out the reference commit in a temporary git worktree and runs, alternately, the
reference's ``tests/browser`` and this checkout's on the same built site (``KEXUE_SITE``),
restricted to the tests of the chosen chapter pages (``-k``), each ``--repeats`` times, in
the way each design runs in ``.ci/run`` (the reference: one process, or the options given
with ``--reference-args``; this checkout: the command line of ``.ci/run``'s browser phase,
read from it). It prints each run's wall time,
the medians, and the ratio reference / this checkout. The load average is printed with each
run: other processes on a shared machine inflate every time.
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_ci import ci_commands, load  # noqa: E402  (.ci/run's commands, one reader)


def xdist_args() -> list[str]:
    """The pytest-xdist options of .ci/run's browser phase (defaults substituted)."""
    line = ci_commands((ROOT / ".ci" / "run").read_text())["browser test"]
    args = re.sub(r'"\$\{\w+:-([^}]*)\}"', r"\1", line).split()
    out = []
    for i, a in enumerate(args):
        if a in ("-n", "--dist"):
            out += [a, args[i + 1]]
    return out


def run(tree: Path, pages: list[str], extra: list[str]) -> tuple[float, str]:
    env = dict(os.environ, KEXUE_SITE=str(ROOT / "_build" / "html"),
               KEXUE_BROWSER_REQUIRED="1", PYTHONPATH=str(tree))
    expr = " or ".join(pages)
    cmd = [sys.executable, "-m", "pytest", "tests/browser", "-q", "-p", "no:cacheprovider",
           "-k", expr, *extra]
    t0 = time.perf_counter()
    r = subprocess.run(cmd, cwd=tree, env=env, capture_output=True, text=True)
    dt = time.perf_counter() - t0
    last = (r.stdout.strip().splitlines() or ["(no output)"])[-1]
    if r.returncode != 0:
        raise SystemExit(f"{tree}: rc={r.returncode}\n{r.stdout[-3000:]}\n{r.stderr[-2000:]}")
    return dt, last


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reference", required=True, help="the earlier commit to compare with")
    ap.add_argument("--pages", nargs="+", required=True, help="chapter names (pytest -k)")
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--reference-args", default="",
                    help="pytest options of the reference's own .ci/run browser phase, e.g. "
                         "'-n 3 --dist loadgroup' (default: one process)")
    a = ap.parse_args()
    if not (ROOT / "_build" / "html" / "index.html").exists():
        raise SystemExit("build the site first")
    ref_sha = subprocess.run(["git", "rev-parse", "--short", a.reference], cwd=ROOT,
                             check=True, capture_output=True, text=True).stdout.strip()
    head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, check=True,
                          capture_output=True, text=True).stdout.strip()
    extra = xdist_args()
    ref_args = a.reference_args.split()
    print(f"# {time.strftime('%Y-%m-%dT%H:%MZ', time.gmtime())}  browser test of pages "
          f"{', '.join(a.pages)}: reference {ref_sha} ({a.reference_args or 'one process'}) "
          f"vs this checkout {head} "
          f"({' '.join(extra) or 'one process'}), {os.cpu_count()} CPUs")
    with tempfile.TemporaryDirectory() as tmp:
        old = Path(tmp) / "reference"
        subprocess.run(["git", "worktree", "add", "--detach", str(old), ref_sha], cwd=ROOT,
                       check=True, capture_output=True)
        try:
            times: dict[str, list[float]] = {"reference": [], "this checkout": []}
            for k in range(a.repeats):
                for name, tree, args in (("reference", old, ref_args),
                                         ("this checkout", ROOT, extra)):
                    before = load()
                    dt, last = run(tree, a.pages, args)
                    times[name].append(dt)
                    print(f"  run {k + 1} {name:14s} {dt:7.1f} s  load {before} -> {load()}  "
                          f"{last}", flush=True)
        finally:
            subprocess.run(["git", "worktree", "remove", "--force", str(old)], cwd=ROOT,
                           capture_output=True)
    ref, new = (statistics.median(times[n]) for n in ("reference", "this checkout"))
    print(f"median: reference {ref:.1f} s, this checkout {new:.1f} s, ratio {ref / new:.2f}x")


if __name__ == "__main__":
    main()
