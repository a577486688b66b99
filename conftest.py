"""pytest plugin: run the book's MyST Markdown chapters under ``pytest --nbval``.

nbval only collects ``.ipynb`` files. The chapters are MyST Markdown notebooks (jupytext),
so this plugin reads each ``book/**/*.md`` that declares a kernel through jupytext into an
in-memory notebook and hands its code cells to nbval; no generated notebook is written or
kept in git. The sources carry no stored outputs, so there is nothing to compare: every
cell is executed (in the current Python environment) and any exception fails that cell's
test, reported as ``book/<chapter>.md::Cell <k>``. Claims are checked by assertions inside
the chapters.
"""

from __future__ import annotations

import warnings
from collections import defaultdict
from pathlib import Path

import pytest

try:
    from nbval.plugin import IPyNbCell, IPyNbFile, find_comment_markers, find_metadata_tags
except ImportError:  # nbval missing: plain unit-test runs still work
    IPyNbFile = None


def _is_myst_notebook(path: Path) -> bool:
    """A .md file is a notebook when its YAML header names a kernelspec."""
    with path.open(encoding="utf-8") as fh:
        head = fh.read(2000)
    return head.startswith("---") and "kernelspec:" in head.split("\n---", 1)[0]


if IPyNbFile is not None:

    class MystNotebookFile(IPyNbFile):
        """nbval's collector, fed by jupytext instead of nbformat."""

        def setup(self):
            self.parent.config.option.nbval_current_env = True
            super().setup()

        def collect(self):
            import jupytext

            self.nb = jupytext.read(str(self.fspath))
            self.compare_outputs = False
            cell_num = 0
            for cell in self.nb.cells:
                if cell.cell_type != "code":
                    continue
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    options = defaultdict(bool, find_metadata_tags(cell.metadata))
                    options.update(dict(find_comment_markers(cell.source)))
                options["check"] = False
                yield IPyNbCell.from_parent(self, name=f"Cell {cell_num}", cell_num=cell_num,
                                            cell=cell, options=options)
                cell_num += 1

    def pytest_collect_file(file_path: Path, parent):
        opt = parent.config.option
        if not (getattr(opt, "nbval", False) or getattr(opt, "nbval_lax", False)):
            return None
        if file_path.suffix == ".md" and "book" in file_path.parts and \
                "_build" not in file_path.parts and _is_myst_notebook(file_path):
            return MystNotebookFile.from_parent(parent, path=file_path)
        return None
