"""Execute each chapter once, chapters in parallel, into the cache that myst-nb reads.

The book is built with ``execute_notebooks: cache``: myst-nb looks every notebook up in the
jupyter-cache (``execute.cache`` in ``_config.yml``) by the hash of its code cells and
kernel, and executes it only when it is missing. This module fills that cache, and is used
in two places:

* ``conftest.py`` (``pytest --nbval``): each chapter is executed with the very function
  below, every code cell is reported as a test (``book/<chapter>.md::Cell <k>``), and a
  chapter whose cells all pass is stored in the cache, keyed exactly as myst-nb keys it.
  A build that follows (``.ci/run``) finds every chapter cached and executes none.
* this Sphinx extension (``jupyter-book build``): before Sphinx reads the outdated pages,
  it looks each notebook up in the cache and executes the missing ones in parallel, one
  process per chapter, storing the results from the parent process (the cache's database
  is SQLite: one writer). myst-nb then finds every chapter cached. A chapter that fails is
  not stored; myst-nb executes it again and reports the error as it always has.

Both paths execute a chapter identically, so the cached notebook is the one myst-nb would
have produced: the notebook is read by myst-nb's own reader with the book's MyST settings,
executed by nbclient (what myst-nb and jupyter-cache use) in the chapter's folder, with
the kernel its metadata names, the timeout of ``_config.yml``, and the same environment:
the caller's, without pytest's variables, with ``KEXUE_WIDGETS=static`` (the widgets draw
every frame, as ``_ext/widgets.py`` sets it in the build) and with ``OMP_NUM_THREADS``
(and MKL's and OpenBLAS's) set to ``cpus // jobs`` unless set, so that chapters run side by
side do not fight over the cores and a chapter gets the same thread count, hence the same
floating-point results, whichever path executes it. The ``KEXUE_*`` variables (scale,
device) and the thread count are stored with each cached notebook; a build with different
values does not take it from the cache but executes the chapter again.

``KEXUE_JOBS`` sets the number of chapters executed at once (default: the usable CPUs, at
most 4); ``KEXUE_JOBS=1`` executes them one at a time. With ``KEXUE_EXPECT_CACHED=1`` (set
by ``.ci/run`` after ``pytest --nbval``) the build warns, hence fails under ``-W``, when a
chapter is not in the cache: the tests' execution was not shared with the build.
"""

from __future__ import annotations

import dataclasses as dc
import os
import re
import time
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path
from typing import Any

import nbformat

ROOT = Path(__file__).resolve().parents[1]
ENV_PREFIXES = ("KEXUE_",)
# KEXUE_* variables that steer the infrastructure, not what a chapter computes
INFRA_VARS = ("KEXUE_JOBS", "KEXUE_EXPECT_CACHED", "KEXUE_BROWSER_REQUIRED",
              "KEXUE_BROWSER_LATER", "KEXUE_BROWSER_JOBS", "KEXUE_SCREENSHOTS",
              "KEXUE_FRESH_CHAPTER", "KEXUE_CHROMIUM", "KEXUE_SITE")
THREAD_VARS = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")
_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


# ----------------------------------------------------------------------------- policy
def usable_cpus() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def jobs() -> int:
    """How many chapters execute at once: ``KEXUE_JOBS``, else the usable CPUs (<= 4)."""
    value = os.environ.get("KEXUE_JOBS", "").strip()
    if value:
        n = int(value)
        if n < 1:
            raise ValueError(f"KEXUE_JOBS={value!r}: expected an integer >= 1")
        return n
    return max(1, min(usable_cpus(), 4))


def kernel_env() -> dict[str, str]:
    """The environment every chapter's kernel starts with, in tests and build alike."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("PYTEST_") and k != "PYTEST_XDIST_WORKER"}
    # the book's widgets draw all their frames (what _ext/widgets.py sets in the build)
    env.setdefault("KEXUE_WIDGETS", "static")
    threads = str(max(1, usable_cpus() // jobs()))
    for var in THREAD_VARS:
        env.setdefault(var, threads)
    return env


def env_signature(env: dict[str, str] | None = None) -> dict[str, str]:
    """The variables that change a chapter's outputs: KEXUE_* and the thread counts."""
    env = kernel_env() if env is None else env
    return {k: v for k, v in sorted(env.items())
            if (k.startswith(ENV_PREFIXES) and k not in INFRA_VARS) or k in THREAD_VARS}


# ---------------------------------------------------------------------------- reading
def read_notebook(path: Path, md_config=None) -> nbformat.NotebookNode | None:
    """The chapter as myst-nb reads it (None when the file is not a notebook)."""
    from myst_nb.core.config import NbParserConfig
    from myst_nb.core.read import create_nb_reader

    text = Path(path).read_text(encoding="utf-8")
    reader = create_nb_reader(str(path), md_config or book_md_config(),
                              NbParserConfig(), text)
    return None if reader is None else reader.read(text)


_BOOK_MD_CONFIG = None


def book_md_config(root: Path = ROOT):
    """myst-parser's configuration as ``jupyter-book build`` derives it from _config.yml."""
    global _BOOK_MD_CONFIG
    if _BOOK_MD_CONFIG is None:
        from jupyter_book.config import get_final_config
        from myst_parser.config.main import MdParserConfig

        cfg, _ = get_final_config(user_yaml=root / "_config.yml", sourcedir=root,
                                  cli_config={"latex_individualpages": False},
                                  validate=False)
        names = {f.name for f in dc.fields(MdParserConfig)}
        _BOOK_MD_CONFIG = MdParserConfig(**{k[5:]: v for k, v in cfg.items()
                                            if k.startswith("myst_") and k[5:] in names})
    return _BOOK_MD_CONFIG


def book_execute_config(root: Path = ROOT) -> dict[str, Any]:
    """The ``execute`` section of _config.yml, with the cache path made absolute."""
    import yaml

    cfg = yaml.safe_load((root / "_config.yml").read_text(encoding="utf-8")) or {}
    ex = dict(cfg.get("execute") or {})
    cache = Path(ex.get("cache") or "_build/.jupyter_cache")
    ex["cache"] = str(cache if cache.is_absolute() else root / cache)
    ex.setdefault("timeout", 30)
    ex.setdefault("allow_errors", False)
    ex.setdefault("run_in_temp", False)
    return ex


# -------------------------------------------------------------------------- executing
@dc.dataclass
class Execution:
    """An executed notebook, and what went wrong (indices count code cells only)."""

    nb: nbformat.NotebookNode
    seconds: float
    errors: dict[int, tuple[str, str]]     # code cell -> (message, traceback)
    aborted_at: int | None = None          # code cell where execution stopped
    abort_reason: str = ""
    env: dict[str, str] = dc.field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.errors and self.aborted_at is None


def _expects_error(cell) -> bool:
    return "raises-exception" in cell.get("metadata", {}).get("tags", [])


def execute(nb: nbformat.NotebookNode, cwd: str | Path, *, timeout: int | None,
            allow_errors: bool = True, env: dict[str, str] | None = None) -> Execution:
    """Execute ``nb`` in place as myst-nb's cache mode does (nbclient, ``cwd``, timeout).

    ``allow_errors=True`` executes every cell whatever fails (as nbval does);
    ``False`` stops at the first error (as myst-nb does).
    """
    from nbclient import NotebookClient

    meta = nb.metadata.get("execution", {})       # myst-nb's meta_override
    timeout = meta.get("timeout", timeout)
    code_index = {}
    for i, cell in enumerate(nb.cells):
        if cell.cell_type == "code":
            code_index[i] = len(code_index)
    current = {"cell": None}

    def on_start(cell, cell_index):
        current["cell"] = cell_index

    env = kernel_env() if env is None else env
    client = NotebookClient(nb, timeout=timeout, allow_errors=allow_errors,
                            record_timing=False, on_cell_start=on_start,
                            resources={"metadata": {"path": str(Path(cwd).resolve())}})
    aborted_at, reason = None, ""
    t0 = time.perf_counter()
    try:
        client.execute(env=env)
    except Exception as exc:  # CellExecutionError, CellTimeoutError, DeadKernelError
        idx = current["cell"]
        aborted_at = code_index.get(idx, 0) if idx is not None else 0
        reason = f"{type(exc).__name__}: {_ANSI.sub('', str(exc))}"
    seconds = time.perf_counter() - t0
    errors = {}
    for i, cell in enumerate(nb.cells):
        if cell.cell_type != "code" or _expects_error(cell):
            continue
        for out in cell.get("outputs", []):
            if out.get("output_type") == "error":
                tb = _ANSI.sub("", "\n".join(out.get("traceback", [])))
                errors[code_index[i]] = (f"{out.get('ename')}: {out.get('evalue')}", tb)
                break
    if aborted_at is not None and aborted_at in errors:
        # stopped by the first error (allow_errors=False): the error says it all
        aborted_at, reason = (None, "") if allow_errors else (aborted_at, reason)
    return Execution(nb, seconds, errors, aborted_at, reason, env_signature(env))


# ---------------------------------------------------------------------------- caching
def cache_store(cache_path: str | Path, source: str | Path, nb: nbformat.NotebookNode,
                seconds: float, env: dict[str, str]) -> int:
    """Store an executed chapter as myst-nb's cache mode does; returns the record's id.

    Call from one process only (SQLite).
    """
    from jupyter_cache import get_cache
    from jupyter_cache.base import CacheBundleIn
    from jupyter_cache.cache.db import NbProjectRecord

    cache = get_cache(str(cache_path))
    stage = cache.add_nb_to_project(str(Path(source).resolve()),
                                    read_data={"type": "plugin", "name": "myst_nb_md"})
    NbProjectRecord.remove_tracebacks([stage.pk], cache.db)
    record = cache.cache_notebook_bundle(
        CacheBundleIn(nb, stage.uri, data={"execution_seconds": seconds,
                                           "kexue_env": env}),
        check_validity=False, overwrite=True)
    return record.pk


def cache_lookup(cache_path: str | Path, nb: nbformat.NotebookNode,
                 env: dict[str, str]) -> str:
    """'hit', 'miss', or 'stale' (cached under other KEXUE_*/thread settings)."""
    from jupyter_cache import get_cache

    if not Path(cache_path).exists():
        return "miss"
    try:
        record = get_cache(str(cache_path)).match_cache_notebook(nb)
    except KeyError:
        return "miss"
    stored = (record.data or {}).get("kexue_env")
    if stored is not None and stored != env:
        return "stale"
    return "hit"


def _cache_remove(cache_path: str | Path, nb: nbformat.NotebookNode) -> None:
    from jupyter_cache import get_cache

    cache = get_cache(str(cache_path))
    try:
        cache.remove_cache_record(cache.match_cache_notebook(nb).pk)
    except KeyError:
        pass


# ------------------------------------------------------------------- the build (Sphinx)
def _execute_worker(args: tuple[str, str, str, int | None, bool, dict[str, str]]):
    """Pool worker: execute one notebook (given as JSON) and return the JSON executed."""
    docname, nb_json, cwd, timeout, allow_errors, env = args
    nb = nbformat.reads(nb_json, as_version=nbformat.NO_CONVERT)
    result = execute(nb, cwd, timeout=timeout, allow_errors=allow_errors, env=env)
    return (docname, nbformat.writes(result.nb), result.seconds, result.ok,
            result.errors, result.aborted_at, result.abort_reason)


def execute_outdated(app, env, docnames: list[str]) -> None:
    """``env-before-read-docs``: execute the notebooks missing from the cache, in parallel."""
    from sphinx.util import logging

    from myst_nb.core.read import create_nb_reader

    logger = logging.getLogger(__name__)
    nb_config = env.mystnb_config
    if nb_config.execution_mode != "cache":
        return
    cache_path = nb_config.execution_cache_path or ".jupyter_cache"
    kenv = kernel_env()
    signature = env_signature(kenv)
    todo, hits = [], 0
    for docname in sorted(docnames):
        path = Path(env.doc2path(docname))
        if path.suffix != ".md" or not path.exists():
            continue
        text = path.read_text(encoding="utf-8")
        reader = create_nb_reader(str(path), env.myst_config, nb_config, text)
        if reader is None:
            continue
        nb = reader.read(text)
        state = cache_lookup(cache_path, nb, signature)
        if state == "hit":
            hits += 1
            continue
        cwd = path.parent
        todo.append((docname, nbformat.writes(nb), str(cwd), nb_config.execution_timeout,
                     nb_config.execution_allow_errors, kenv, state, str(path)))
    if todo and os.environ.get("KEXUE_EXPECT_CACHED") == "1":
        logger.warning("[parallel_execution] KEXUE_EXPECT_CACHED=1 but not in the cache "
                       "(pytest --nbval did not store them, or stored them under other "
                       "keys or settings): " + ", ".join(f"{t[0]} ({t[6]})" for t in todo),
                       type="kexue", subtype="execution")
    n_jobs = min(jobs(), len(todo)) if todo else 0
    logger.info(f"[parallel_execution] {hits} chapter(s) in the cache, "
                f"{len(todo)} to execute ({n_jobs} at a time): "
                + ", ".join(f"{t[0]} ({t[6]})" for t in todo))
    if not todo:
        app.env.kexue_executed = []
        return
    t0 = time.perf_counter()
    # longest first would be best; the previous run's time is not known, so source size
    todo.sort(key=lambda t: -len(t[1]))
    results = []
    if n_jobs == 1:
        results = [_execute_worker(t[:6]) for t in todo]
    else:
        with ProcessPoolExecutor(n_jobs, mp_context=get_context("spawn")) as pool:
            results = list(pool.map(_execute_worker, [t[:6] for t in todo]))
    sources = {t[0]: t[7] for t in todo}
    states = {t[0]: t[6] for t in todo}
    nbs = {t[0]: t[1] for t in todo}
    executed = []
    for docname, nb_json, seconds, ok, errors, aborted_at, reason in results:
        if ok:
            cache_store(cache_path, sources[docname], nbformat.reads(nb_json, as_version=4),
                        seconds, signature)
            executed.append(docname)
            logger.info(f"[parallel_execution] {docname}: executed in {seconds:.1f} s, "
                        "cached")
        else:
            where = (sorted(errors)[0] if errors else aborted_at)
            if states[docname] == "stale":     # or myst-nb would take the stale outputs
                _cache_remove(cache_path, nbformat.reads(nbs[docname], as_version=4))
            logger.info(f"[parallel_execution] {docname}: failed at code cell {where}; "
                        "left to myst-nb, which reports the error")
    app.env.kexue_executed = executed
    logger.info(f"[parallel_execution] executed {len(executed)} chapter(s) in "
                f"{time.perf_counter() - t0:.1f} s")


def setup(app) -> dict[str, Any]:
    app.connect("env-before-read-docs", execute_outdated)
    return {"version": "0.1", "parallel_read_safe": True, "parallel_write_safe": True}
