"""A published notebook runs top to bottom in a fresh environment without the helpers.

This is what a Colab reader does: open `notebooks/<chapter>.ipynb`, run all. The test builds
a fresh virtual environment that sees the scientific stack (torch, numpy, scikit-learn,
ipywidgets, ...) but neither `kexue_helpers` nor the book's build tools (myst-nb, Sphinx,
Jupyter Book), as on Colab. The notebook's first cell must then install the helpers; its
address (the published repository, a placeholder until the repository is public) is
pointed at this checkout's git repository, a local source. Every cell must run, and the
Markdown must be left as published.

Needs a built site (`_build/html/notebooks/`); skipped without one unless
`KEXUE_BROWSER_REQUIRED=1` (as in CI), when it fails instead. `KEXUE_FRESH_CHAPTER` picks
the chapter (default: the one that executes fastest at small scale, 23 s of the eleven
chapters' 23-72 s, one at a time on one thread: benchmarks/results/ci_breakdown.txt).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SITE = Path(os.environ.get("KEXUE_SITE", ROOT / "_build" / "html"))
CHAPTER = os.environ.get("KEXUE_FRESH_CHAPTER", "imbalance_priors")
NOTEBOOK = SITE / "notebooks" / "book" / f"{CHAPTER}.ipynb"
REQUIRED = os.environ.get("KEXUE_BROWSER_REQUIRED") == "1"
# What Colab lacks and the book's own environment has: the helpers and the build tools.
HIDDEN = re.compile(r"^(kexue|__editable__|myst_nb|myst_parser|jupyter_book|sphinx|nbval|"
                    r"jupyter_cache|playwright)", re.I)


def _fresh_env(tmp: Path) -> Path:
    """A venv whose site-packages links every package of ours except the hidden ones."""
    venv = tmp / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    farm = tmp / "stack"
    farm.mkdir()
    ours = Path(sysconfig.get_paths()["purelib"])
    for entry in ours.iterdir():
        if HIDDEN.match(entry.name) or entry.suffix == ".pth" or entry.name in ("pip", "_distutils_hack"):
            continue
        (farm / entry.name).symlink_to(entry)
    py = venv / "bin" / "python"
    site = subprocess.run([str(py), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                          check=True, capture_output=True, text=True).stdout.strip()
    Path(site, "book_stack.pth").write_text(f"{farm}\n")
    return py


def _kernel(tmp: Path, py: Path) -> Path:
    spec = tmp / "kernels" / "fresh"
    spec.mkdir(parents=True)
    (spec / "kernel.json").write_text(json.dumps({
        "argv": [str(py), "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "fresh", "language": "python"}))
    return tmp


@pytest.mark.skipif(not NOTEBOOK.exists() and not REQUIRED, reason="no published notebook")
def test_published_notebook_runs_in_a_fresh_environment(tmp_path):
    assert NOTEBOOK.exists(), f"{NOTEBOOK} is missing: build the site first"
    import nbformat
    from nbclient import NotebookClient

    py = _fresh_env(tmp_path)
    clean = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    probe = subprocess.run([str(py), "-c", "import kexue_helpers"], capture_output=True,
                           cwd=tmp_path, env=clean)
    assert probe.returncode != 0, "the fresh environment must not see kexue_helpers"
    probe = subprocess.run([str(py), "-c", "import torch, sklearn, ipykernel"],
                           capture_output=True, cwd=tmp_path, env=clean)
    assert probe.returncode == 0, probe.stderr.decode()[-2000:]

    nb = nbformat.read(NOTEBOOK, as_version=4)
    published_md = [c.source for c in nb.cells if c.cell_type == "markdown"]
    install = [c for c in nb.cells if c.cell_type == "code" and "%pip install" in c.source]
    assert install, "the published notebook has no install cell"
    local = f"git+file://{ROOT}"
    n_urls = 0
    for cell in install:
        # the whole requirement: pip < 24 rejects "name @ git+file://..." but takes the URL
        cell.source, k = re.subn(r"kexue-helpers\s*@\s*git\+https://[^\s\"']+", local,
                                 cell.source)
        n_urls += k
    assert n_urls == 1, f"expected one install address, found {n_urls}"

    # one thread, as the chapters execute in the tests (2 cores, 2 chapters at a time): the
    # browser tests run beside this kernel, and idle BLAS threads would spin against them
    env = dict(clean, JUPYTER_PATH=str(_kernel(tmp_path, py)), KEXUE_SCALE="small",
               KEXUE_DEVICE="cpu", PIP_DISABLE_PIP_VERSION_CHECK="1", OMP_NUM_THREADS="1",
               MKL_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1")
    workdir = tmp_path / "work"
    workdir.mkdir()
    old = dict(os.environ)
    os.environ.clear()
    os.environ.update(env)
    try:
        client = NotebookClient(nb, kernel_name="fresh", timeout=600,
                                resources={"metadata": {"path": str(workdir)}})
        client.execute()
    finally:
        os.environ.clear()
        os.environ.update(old)
    errors = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])
              if o.get("output_type") == "error"]
    assert not errors, errors[:1]
    installed = subprocess.run([str(py), "-c", "import kexue_helpers; print(kexue_helpers.__file__)"],
                               capture_output=True, text=True, cwd=workdir, env=clean)
    assert installed.returncode == 0 and str(ROOT) not in installed.stdout, installed
    assert [c.source for c in nb.cells if c.cell_type == "markdown"] == published_md
