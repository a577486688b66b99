"""The repository's promises about itself: README commands, CI, table of contents."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]


def _readme_commands() -> list[str]:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    return re.findall(r"```bash\n(.*?)\n```", text, flags=re.S)


def test_ci_runs_the_readme_test_command_verbatim():
    commands = _readme_commands()
    test_cmd = [c for c in commands if "pytest --nbval" in c]
    assert len(test_cmd) == 1, "README must show exactly one test command"
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    assert test_cmd[0].strip() in ci.splitlines()


def test_readme_build_command_is_strict():
    build = [c for c in _readme_commands() if "jupyter-book build" in c]
    assert len(build) == 1
    assert "-W" in build[0] and "pip install -r requirements.txt" in build[0]


def test_every_toc_entry_exists_and_every_chapter_is_in_the_toc():
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text(encoding="utf-8"))
    files = [toc["root"]]
    for part in toc.get("parts", []):
        files += [c["file"] for c in part["chapters"]]
    for f in files:
        assert (ROOT / f"{f}.md").exists(), f"{f}.md is in _toc.yml but does not exist"
    notebooks = [p for p in (ROOT / "book").glob("*.md")
                 if "kernelspec:" in p.read_text(encoding="utf-8")[:2000]]
    listed = {ROOT / f"{f}.md" for f in files}
    missing = [p.name for p in notebooks if p not in listed]
    assert not missing, f"chapters missing from _toc.yml: {missing}"


def test_torch_is_pinned_for_the_cpu_install():
    req = (ROOT / "requirements.txt").read_text(encoding="utf-8")
    assert re.search(r"^torch==\d+\.\d+\.\d+\s*$", req, flags=re.M)


# --- each chapter executes once per CI run (issue 16): conftest.py + _ext/parallel_execution.py


def _execution():
    import importlib.util
    import sys

    if "parallel_execution" not in sys.modules:
        spec = importlib.util.spec_from_file_location(
            "parallel_execution", ROOT / "_ext" / "parallel_execution.py")
        module = importlib.util.module_from_spec(spec)
        sys.modules["parallel_execution"] = module
        spec.loader.exec_module(module)
    return sys.modules["parallel_execution"]


def test_the_build_takes_the_tests_execution_from_the_cache():
    cfg = yaml.safe_load((ROOT / "_config.yml").read_text(encoding="utf-8"))
    assert cfg["execute"]["execute_notebooks"] == "cache"
    assert "parallel_execution" in cfg["sphinx"]["local_extensions"]
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8").splitlines()
    builds = [line for line in ci if "jupyter-book build" in line and not line.startswith("#")]
    assert builds and all("KEXUE_EXPECT_CACHED=1" in line for line in builds)
    assert "pytest-xdist" in (ROOT / "requirements.txt").read_text(encoding="utf-8")


def test_kernel_env_drops_pytest_and_fixes_threads(monkeypatch):
    mod = _execution()
    monkeypatch.setenv("PYTEST_XDIST_WORKER", "gw0")
    monkeypatch.setenv("KEXUE_SCALE", "small")
    monkeypatch.setenv("KEXUE_JOBS", "2")
    monkeypatch.setenv("KEXUE_EXPECT_CACHED", "1")
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.delenv("KEXUE_WIDGETS", raising=False)
    env = mod.kernel_env()
    assert not any(k.startswith("PYTEST_") for k in env)
    assert env["KEXUE_WIDGETS"] == "static"              # as _ext/widgets.py in the build
    assert env["OMP_NUM_THREADS"] == str(max(1, mod.usable_cpus() // 2))
    sig = mod.env_signature(env)
    assert sig["KEXUE_SCALE"] == "small" and "KEXUE_JOBS" not in sig
    assert "KEXUE_EXPECT_CACHED" not in sig
    monkeypatch.setenv("KEXUE_JOBS", "0")
    try:
        mod.jobs()
    except ValueError as exc:
        assert "KEXUE_JOBS" in str(exc)
    else:
        raise AssertionError("KEXUE_JOBS=0 accepted")


_DEMO = '''---
jupytext:
  text_representation:
    extension: .md
    format_name: myst
kernelspec:
  display_name: Python 3
  language: python
  name: python3
---

# A demo

```{code-cell} ipython3
import os
x = 1
print(os.path.basename(os.getcwd()))
```

```{code-cell} ipython3
:tags: [remove-cell]
assert x == CHECK, "x differs"
```

```{code-cell} ipython3
y = x + 1
y
```
'''


def test_execution_is_stored_and_found_as_myst_nb_keys_it(tmp_path):
    mod = _execution()
    book = tmp_path / "chapters"
    book.mkdir()
    src = book / "demo.md"
    src.write_text(_DEMO.replace("CHECK", "1"), encoding="utf-8")
    cache = tmp_path / "cache"
    env = mod.kernel_env()
    sig = mod.env_signature(env)

    nb = mod.read_notebook(src)
    res = mod.execute(nb, src.parent, timeout=60, allow_errors=True, env=env)
    assert res.ok and res.errors == {}
    outs = [c.outputs for c in res.nb.cells if c.cell_type == "code"]
    assert outs[0][0]["text"] == "chapters\n"                 # cwd: the chapter's folder
    assert outs[2][0]["data"]["text/plain"] == "2"
    assert mod.cache_lookup(cache, mod.read_notebook(src), sig) == "miss"
    mod.cache_store(cache, src, res.nb, res.seconds, sig)
    assert mod.cache_lookup(cache, mod.read_notebook(src), sig) == "hit"

    # what myst-nb does with a fresh read of the source: the executed outputs come back
    from jupyter_cache import get_cache

    _, merged = get_cache(str(cache)).merge_match_into_notebook(mod.read_notebook(src))
    assert merged.cells[-1].outputs[0]["data"]["text/plain"] == "2"

    # prose edited: still cached; code edited: not; other scale: stale
    src.write_text(_DEMO.replace("CHECK", "1") + "\nMore prose.\n", encoding="utf-8")
    assert mod.cache_lookup(cache, mod.read_notebook(src), sig) == "hit"
    assert mod.cache_lookup(cache, mod.read_notebook(src),
                            {**sig, "KEXUE_SCALE": "full"}) == "stale"
    src.write_text(_DEMO.replace("CHECK", "1").replace("y = x + 1", "y = x + 2"),
                   encoding="utf-8")
    assert mod.cache_lookup(cache, mod.read_notebook(src), sig) == "miss"


def test_a_failing_cell_is_named_and_the_rest_still_run(tmp_path):
    mod = _execution()
    src = tmp_path / "demo.md"
    src.write_text(_DEMO.replace("CHECK", "2"), encoding="utf-8")
    res = mod.execute(mod.read_notebook(src), tmp_path, timeout=60, allow_errors=True)
    assert not res.ok and list(res.errors) == [1]
    assert "AssertionError: x differs" in res.errors[1][0]
    assert res.nb.cells[-1].outputs[0]["data"]["text/plain"] == "2"   # cell 2 still ran
    stopped = mod.execute(mod.read_notebook(src), tmp_path, timeout=60, allow_errors=False)
    assert list(stopped.errors) == [1] and stopped.nb.cells[-1].outputs == []


def test_bibliography_keys_are_unique_and_every_bib_file_is_read():
    """A key defined in two ``book/bib/*.bib`` files makes sphinxcontrib-bibtex drop the
    second file whole (every citation of it then fails the strict build); a file missing
    from ``bibtex_bibfiles`` is never read. Both are caught here, before a build."""
    config = yaml.safe_load((ROOT / "_config.yml").read_text(encoding="utf-8"))
    listed = set(config["bibtex_bibfiles"])
    files = sorted(p.relative_to(ROOT).as_posix() for p in (ROOT / "book" / "bib").glob("*.bib"))
    assert set(files) == listed, (f"bib files not in _config.yml: {sorted(set(files) - listed)}; "
                                  f"listed but missing: {sorted(listed - set(files))}")
    seen: dict[str, str] = {}
    clashes = []
    for f in files:
        for key in re.findall(r"^@\w+\s*\{\s*([^,\s]+)\s*,", (ROOT / f).read_text(encoding="utf-8"),
                              flags=re.M):
            if key.lower() in seen:
                clashes.append(f"{key} in {f} and {seen[key.lower()]}")
            seen.setdefault(key.lower(), f)
    assert not clashes, "bibliography keys defined twice: " + "; ".join(clashes)


_GROUPED_CONFTEST = """
import pytest

@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config, items):
    for item in items:
        item.add_marker(pytest.mark.xdist_group("page-" + item.callspec.params["p"][0]))
"""

_GROUPED_TESTS = """
import os
import time

import pytest

@pytest.mark.parametrize("p", [g + str(k) for k in range(5) for g in "abcd"])
def test_where(p):
    time.sleep(0.05)  # both workers get work
    with open(os.environ["WHERE_LOG"], "a") as fh:
        fh.write(f"{p[0]} {os.environ['PYTEST_XDIST_WORKER']}\\n")
"""


def test_xdist_keeps_a_group_in_one_process(tmp_path):
    """The browser phase of .ci/run (``-n 3 --dist loadgroup``) loads each page once per
    process and lets all of the page's checks read that visit; that holds only if every
    test of a page runs in the same process. The groups are marks set in a conftest hook
    (tests/browser/conftest.py); the hook must run before xdist reads the marks, and the
    installed pytest and pytest-xdist must honour them (pytest 9.2 with pytest-xdist 3.8
    silently does not). Twenty tests in four interleaved groups on two workers: each group
    in one (without the grouping, the chance that all four land whole is tiny)."""
    import os
    import subprocess
    import sys

    (tmp_path / "conftest.py").write_text(_GROUPED_CONFTEST)
    (tmp_path / "test_grouped.py").write_text(_GROUPED_TESTS)
    log = tmp_path / "where.log"
    env = dict(os.environ, WHERE_LOG=str(log))
    r = subprocess.run([sys.executable, "-m", "pytest", "-n", "2", "--dist", "loadgroup",
                        "-p", "no:cacheprovider", "-q", str(tmp_path)], cwd=tmp_path,
                       env=env, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    rows = [line.split() for line in log.read_text().splitlines()]
    assert len(rows) == 20, rows
    workers = {g: {w for g2, w in rows if g2 == g} for g in "abcd"}
    assert len(set().union(*workers.values())) == 2, f"one worker did everything: {workers}"
    assert all(len(w) == 1 for w in workers.values()), \
        f"a group's tests ran in several processes: {workers}"


def test_the_browser_groups_are_set_before_xdist_reads_them():
    """tests/browser/conftest.py's hook that sets the groups runs first (tryfirst)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location(
        "browser_conftest", ROOT / "tests" / "browser" / "conftest.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    opts = getattr(mod.pytest_collection_modifyitems, "pytest_impl", {})  # pluggy's marks
    assert opts.get("tryfirst"), opts


def test_ci_variables_do_not_change_the_execution_cache_key():
    """A KEXUE_* variable that .ci/run sets for one phase and not the other must not enter
    the key the chapters are cached under, or the build finds every chapter the tests
    executed stale and executes it again (KEXUE_EXPECT_CACHED=1 then fails the build)."""
    mod = _execution()
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    named = set(re.findall(r"\b(KEXUE_[A-Z_]+)=", ci))
    assert named, "no KEXUE_ variable found in .ci/run"
    keyed = sorted(v for v in named if v not in mod.INFRA_VARS)
    assert not keyed, f".ci/run sets {keyed}, which would change the cache key"
