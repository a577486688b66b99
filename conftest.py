"""pytest plugin: run the book's MyST Markdown chapters under ``pytest --nbval``.

nbval only collects ``.ipynb`` files. The chapters are MyST Markdown notebooks, so this
plugin reads each ``book/**/*.md`` that declares a kernel (with myst-nb's reader, as the
book build reads it) and makes every code cell a test, reported as
``book/<chapter>.md::Cell <k>`` with nbval's report of a failing cell (its source and
traceback). The sources carry no stored outputs, so there is nothing to compare: any
exception fails that cell's test; claims are checked by assertions inside the chapters.

Each chapter executes once per run, shared with the book build (``_ext/parallel_execution.py``
says how): the chapter is executed exactly as ``jupyter-book build`` executes it (nbclient,
in the chapter's folder, the same kernel, timeout and environment), every cell whatever
fails before it, and when every cell passes the executed notebook is stored in the book's
jupyter-cache (``execute.cache`` in ``_config.yml``), keyed as myst-nb keys it, so that a
build that follows executes no chapter again.

Chapters run in parallel: when ``--nbval`` collects two chapters or more and pytest-xdist
is installed, the run is spread over ``KEXUE_JOBS`` workers (default: the usable CPUs, at
most 4), one whole chapter per worker at a time (``--dist loadfile``), chapters first and
longest first. ``-n`` on the command line overrides it (``-n 0``: one process). The
executed notebooks are written to the cache by the controlling process only (SQLite).
"""

from __future__ import annotations

import importlib.util
import os
import sys
import tempfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent

try:
    from nbval.plugin import IPyNbCell, IPyNbFile, NbCellError
except ImportError:  # nbval missing: plain unit-test runs still work
    IPyNbFile = None


def _execution_module():
    """``_ext/parallel_execution.py``, shared with the book build."""
    name = "parallel_execution"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(
            name, ROOT / "_ext" / "parallel_execution.py")
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


def _is_myst_notebook(path: Path) -> bool:
    """A .md file is a notebook when its YAML header names a kernelspec."""
    with path.open(encoding="utf-8") as fh:
        head = fh.read(2000)
    return head.startswith("---") and "kernelspec:" in head.split("\n---", 1)[0]


def _is_chapter(path: Path) -> bool:
    return (path.suffix == ".md" and "book" in path.parts and "_build" not in path.parts
            and _is_myst_notebook(path))


def _nbval_on(config) -> bool:
    opt = config.option
    return bool(getattr(opt, "nbval", False) or getattr(opt, "nbval_lax", False))


def _chapters_named(config) -> list[Path]:
    """The chapters the command line (or ``testpaths``) will collect."""
    args = [a.split("::")[0] for a in config.args if not a.startswith("-")]
    if not args or args == [str(config.invocation_params.dir)]:
        args = [str(ROOT / p) for p in config.getini("testpaths")] or [str(ROOT)]
    found = []
    for arg in args:
        p = Path(arg)
        p = p if p.is_absolute() else config.invocation_params.dir / p
        if p.is_dir():
            found += [q for q in p.rglob("*.md") if _is_chapter(q)]
        elif p.exists() and _is_chapter(p):
            found.append(p)
    return found


@pytest.hookimpl(tryfirst=True)
def pytest_cmdline_main(config):
    """Spread a run of several chapters over the cores, unless ``-n`` was given."""
    if hasattr(config, "workerinput") or not _nbval_on(config):
        return None
    if not config.pluginmanager.hasplugin("xdist"):
        return None
    if getattr(config.option, "numprocesses", None) is not None:
        return None                               # the user chose
    if config.getoption("usepdb", False) or config.option.collectonly:
        return None
    n = min(_execution_module().jobs(), len(_chapters_named(config)))
    if n >= 2:
        config.option.numprocesses = n
        if config.option.dist == "no":
            config.option.dist = "loadfile"
            config.option.loadscopereorder = False    # keep our order: chapters first
    return None


def pytest_collection_modifyitems(session, config, items):
    """Chapters first, longest first (a proxy: source size), then the unit tests."""
    def key(item):
        parent = item.parent
        if IPyNbFile is not None and isinstance(parent, MystNotebookFile):
            return (0, -Path(parent.path).stat().st_size, str(parent.path))
        return (1, 0, "")
    items.sort(key=key)   # stable: cells keep their order


def _store(config, source: str, staged: str, seconds: float, env: dict) -> None:
    mod = _execution_module()
    import nbformat

    nb = nbformat.read(staged, as_version=4)
    cache = mod.book_execute_config(ROOT)["cache"]
    mod.cache_store(cache, source, nb, seconds, env)
    os.unlink(staged)


@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node, error):
    """xdist controller: store the chapters a worker executed (one writer for SQLite)."""
    for source, staged, seconds, env in node.workeroutput.get("kexue_executed", []):
        _store(node.config, source, staged, seconds, env)


if IPyNbFile is not None:

    class MystNotebookFile(IPyNbFile):
        """nbval's collector: the chapter read by myst-nb, executed once in ``setup``."""

        def setup(self):
            mod = _execution_module()
            ex = mod.book_execute_config(ROOT)
            nb = mod.read_notebook(Path(self.fspath))
            self.execution = mod.execute(nb, Path(self.fspath).parent,
                                         timeout=ex["timeout"], allow_errors=True)
            if self.execution.ok:
                self._stage(ex)

        def _stage(self, ex):
            import nbformat

            res = self.execution
            source = str(Path(self.fspath).resolve())
            fd, staged = tempfile.mkstemp(suffix=".ipynb", prefix="kexue-executed-")
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                nbformat.write(res.nb, fh)
            config = self.config
            if hasattr(config, "workerinput"):       # xdist worker: the controller stores
                config.workeroutput.setdefault("kexue_executed", []).append(
                    (source, staged, res.seconds, res.env))
            else:
                _store(config, source, staged, res.seconds, res.env)

        def teardown(self):
            self.execution = None

        def collect(self):
            nb = _execution_module().read_notebook(Path(self.fspath))
            self.nb = nb
            self.compare_outputs = False
            cell_num = 0
            for cell in nb.cells:
                if cell.cell_type != "code":
                    continue
                yield MystNotebookCell.from_parent(self, name=f"Cell {cell_num}",
                                                   cell_num=cell_num, cell=cell,
                                                   options={"check": False})
                cell_num += 1

    class MystNotebookCell(IPyNbCell):
        """One code cell: passes or fails as it did when its chapter was executed."""

        def setup(self):
            pass

        def teardown(self):
            pass

        def runtest(self):
            res = self.parent.execution
            if res is None:
                raise RuntimeError("the chapter was not executed")
            if self.cell_num in res.errors:
                message, traceback = res.errors[self.cell_num]
                raise NbCellError(self.cell_num, f"Cell raised uncaught exception: "
                                  f"{message}", self.cell.source, traceback)
            if res.aborted_at is not None:
                if self.cell_num == res.aborted_at:
                    raise NbCellError(self.cell_num, res.abort_reason, self.cell.source)
                if self.cell_num > res.aborted_at:
                    pytest.skip(f"not executed: the chapter stopped at cell "
                                f"{res.aborted_at}")

    def pytest_collect_file(file_path: Path, parent):
        if not _nbval_on(parent.config):
            return None
        if _is_chapter(file_path):
            return MystNotebookFile.from_parent(parent, path=file_path)
        return None
