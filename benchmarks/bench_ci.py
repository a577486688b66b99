"""Benchmark of CI: ``.ci/run``'s phases, timed one by one, from a fresh clone.

Run from the repository root (it clones the committed HEAD, or ``--commit REF``;
uncommitted changes are not measured):

    python benchmarks/bench_ci.py | tee benchmarks/results/ci_breakdown.txt

It clones the repository into a temporary folder and runs there, one after the other, the
commands ``.ci/run`` runs (read from ``.ci/run`` itself, so they cannot drift apart):

1. install: ``python3 -m venv .venv && . .venv/bin/activate && pip install -r requirements.txt``
   (the README test command up to its ``pytest``);
2. execution: ``python -m pytest --nbval`` (the unit tests, and every chapter executed);
3. build: the strict ``jupyter-book build``; its log says how many chapters it found in the
   cache and how many it executed (the tests' execution is shared: it should be none);
   meanwhile, as in ``.ci/run``, the browser tests of the fixture books (``-m fixture_book``);
4. browser test: ``pytest tests/browser ...`` on the built site.

Then, not part of CI, the edit-build loop of a writer: one chapter's code edited (a comment
appended to its last code cell) and the book rebuilt, then one chapter's prose edited and
rebuilt; the build's log says which chapters were executed again.

``--reuse-venv PATH`` skips the install and uses that environment (for quick reruns).
The load average is printed before and after each phase: other processes on a shared
machine inflate every time reported here. The reference is the issue's measurement of the
previous design (every chapter executed twice, one at a time): install 1.5 min, pytest
1.6 min, build 2.5 min, browser test 3 min, 8.6 min in all (six chapters, idle machine).
"""

from __future__ import annotations

import argparse
import os
import re
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
REFERENCE = {"install": 90.0, "execution": 96.0, "build": 150.0, "browser test": 180.0}


def load() -> str:
    with open("/proc/loadavg") as fh:
        return " ".join(fh.read().split()[:3])


def ci_commands(ci: str) -> dict[str, str]:
    """The commands of .ci/run, by phase."""
    lines = re.sub(r"\\\n\s*", "", ci).splitlines()       # join continued lines
    test = next(l for l in lines if "pytest --nbval" in l and "pip install" in l)
    install, tests = test.split(" && python -m pytest", 1)
    # the variables .ci/run exports for the README's command (pip without bytecode
    # compilation; the browser tests skipped there, run in the browser phases)
    exports = [l.strip() for l in lines[:lines.index(test)] if l.startswith("export ")]
    if exports:
        install = " && ".join(exports + [install])
        tests = " && ".join(exports) + " && python -m pytest" + tests
    else:
        tests = "python -m pytest" + tests
    code = [l.strip() for l in lines if l.strip() and not l.lstrip().startswith("#")]
    build = next(l for l in code if "jupyter-book build" in l)
    # .ci/run builds in the background (its log to a file) while the fixture-book browser
    # tests run; the phase here does the same, with the build's log in the phase's log
    build = re.sub(r"\s*>\S+\s+2>&1\s*&\s*$", "", build)
    fixture = next(l for l in code if "-m fixture_book" in l).split("||")[0].strip()
    browser = next(l for l in code if "pytest tests/browser" in l and "tests/published" in l)
    both = (f"mkdir -p _build; ({build}) & b=$!; {fixture} >_build/bench-fixture.log 2>&1; "
            f"f=$?; wait $b; b=$?; tail -n 1 _build/bench-fixture.log; exit $((b || f))")
    return {"install": install, "execution": tests,
            "build": both, "browser test": browser}


CPU = {}   # phase -> CPU seconds (user + system) of the phase's processes


def run(cmd: str, cwd: Path, log: Path, env: dict[str, str]) -> tuple[float, int, str]:
    r0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    with log.open("w") as fh:
        proc = subprocess.run(["bash", "-c", cmd], cwd=cwd, stdout=fh,
                              stderr=subprocess.STDOUT, env=env)
    seconds = time.perf_counter() - t0
    r1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    CPU[log.stem] = (r1.ru_utime - r0.ru_utime) + (r1.ru_stime - r0.ru_stime)
    return seconds, proc.returncode, log.read_text(errors="replace")


def build_summary(out: str) -> str:
    plain = re.sub(r"\x1b\[[0-9;]*m", "", out)
    m = re.search(r"\[parallel_execution\] (\d+) chapter\(s\) in the cache, (\d+) to "
                  r"execute", plain)
    by_mystnb = len(re.findall(r"Executing notebook using", plain))
    cached = len(re.findall(r"Using cached notebook", plain))
    pre = f"{m.group(1)} found in the cache, {m.group(2)} executed before reading" \
        if m else "no parallel_execution line"
    again = re.findall(r"\[parallel_execution\] (\S+): executed in", plain)
    names = f" ({', '.join(again)})" if again else ""
    return (f"{pre}{names}; myst-nb executed {by_mystnb}, took {cached} from the cache")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--reuse-venv", type=Path, help="skip the install, use this venv")
    ap.add_argument("--keep", action="store_true", help="keep the clone")
    ap.add_argument("--no-edit-loop", action="store_true")
    ap.add_argument("--commit", default="HEAD",
                    help="the commit to measure (e.g. the one before issue 16, 64717d7)")
    args = ap.parse_args()

    head = subprocess.run(["git", "rev-parse", args.commit], cwd=ROOT,
                          capture_output=True, text=True).stdout.strip()
    work = Path(tempfile.mkdtemp(prefix="kexue-ci-bench-"))
    clone = work / "repo"
    subprocess.run(["git", "clone", "-q", str(ROOT), str(clone)], check=True)
    subprocess.run(["git", "checkout", "-q", head], cwd=clone, check=True)
    head = head[:7]
    cmds = ci_commands((clone / ".ci" / "run").read_text(encoding="utf-8"))
    env = {k: v for k, v in os.environ.items()
           if k not in ("VIRTUAL_ENV", "PYTHONPATH") and not k.startswith("KEXUE_")}
    env["PATH"] = ":".join(p for p in env["PATH"].split(":") if ".venv" not in p)
    n_chapters = sum(1 for p in (clone / "book").glob("*.md")
                     if "kernelspec:" in p.read_text(encoding="utf-8")[:2000])

    print(f"CI breakdown: commit {head}, {n_chapters} chapters, {os.cpu_count()} CPUs, "
          f"python {sys.version.split()[0]}")
    print(f"clone: {clone}")
    rows, failed = [], False
    activate = ". .venv/bin/activate && "
    for phase in ("install", "execution", "build", "browser test"):
        cmd = cmds[phase]
        if phase == "install" and args.reuse_venv:
            os.symlink(args.reuse_venv.resolve(), clone / ".venv")
            rows.append((phase, 0.0, "skipped (--reuse-venv)", load(), load()))
            continue
        # the clone's own package first, whatever the venv's editable install points at
        full = cmd if phase == "install" else activate + f"export PYTHONPATH=$PWD && {cmd}"
        before = load()
        seconds, rc, out = run(full, clone, work / f"{phase.replace(' ', '_')}.log", env)
        after = load()
        tail = out.strip().splitlines()[-1:] or [""]
        note = f"rc={rc}; " + (build_summary(out) if phase == "build"
                               else re.sub(r"\x1b\[[0-9;]*m", "", tail[0])[:90])
        rows.append((phase, seconds, note, before, after))
        print(f"  {phase:<13} {seconds:7.1f} s  load {before} -> {after}  {note}",
              flush=True)
        if rc != 0:
            failed = True
            print(out[-3000:])
            break

    edits = []
    if not failed and not args.no_edit_loop:
        build = activate + "export PYTHONPATH=$PWD && jupyter-book build . -W -n --keep-going"
        chapter = clone / "book" / "jl_applications.md"
        text = chapter.read_text(encoding="utf-8")
        # a comment appended to the last code cell: its code changes, its outputs do not
        start = text.rfind("```{code-cell}")
        end = text.find("\n```", start + 3)
        code_edit = text[:end] + "\n# edited by bench_ci" + text[end:]
        for what, new in (("code of book/jl_applications.md", code_edit),
                          ("prose of book/jl_applications.md",
                           code_edit + "\nOne more sentence, added by bench_ci.\n")):
            chapter.write_text(new, encoding="utf-8")
            before = load()
            seconds, rc, out = run(build, clone, work / "edit.log", env)
            edits.append((what, seconds, f"rc={rc}; {build_summary(out)}", before, load()))

    print()
    print("wall: seconds measured here; cpu: CPU seconds (user + system) the phase's "
          "processes used,\nwhich other load inflates much less than wall time; "
          "reference: the issue's wall\ntimes before this design, on an idle machine "
          "(ratio = wall / reference).")
    print(f"{'phase':<14}{'wall':>8}{'cpu':>8}{'reference':>11}{'ratio':>7}"
          "  load before -> after")
    total = total_cpu = 0.0
    for phase, seconds, note, before, after in rows:
        ref = REFERENCE[phase]
        cpu = CPU.get(phase.replace(" ", "_"), 0.0)
        ratio = f"{seconds / ref:6.2f}" if seconds else "     -"
        print(f"{phase:<14}{seconds:8.1f}{cpu:8.1f}{ref:11.1f}{ratio:>7}  "
              f"{before} -> {after}")
        total += seconds
        total_cpu += cpu
    ref_total = sum(REFERENCE[p] for p, *_ in rows if rows)
    print(f"{'total':<14}{total:8.1f}{total_cpu:8.1f}{ref_total:11.1f}"
          f"{total / ref_total:7.2f}  ({total / 60:.1f} min; target < 10 min)")
    for phase, seconds, note, *_ in rows:
        print(f"  {phase}: {note}")
    if edits:
        print()
        print("edit-build loop (one chapter edited, book rebuilt):")
        for what, seconds, note, before, after in edits:
            print(f"  {what:<34} {seconds:6.1f} s  load {before} -> {after}  {note}")
    if not args.keep:
        shutil.rmtree(work, ignore_errors=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
