#!/usr/bin/env python3
"""Check, in a real JupyterLab and a real browser, that a chapter's widget is live.

What a reader gets from the Binder button, reproduced locally: JupyterLab opens
``book/<chapter>.md`` as a notebook (jupytext, default viewer set by
``jupytext-config set-default-viewer`` as ``binder/postBuild`` does), runs every cell, and
then moving a widget control must change the widget's output. Steps:

1. start JupyterLab on 127.0.0.1 (a free port, a random token, a temporary Jupyter config
   and kernel directory, nothing written to ``~``), with a ``python3`` kernel that runs
   ``--kernel-python`` (an environment with the book's requirements);
2. open ``lab/tree/<chapter>`` (the Binder button's ``urlpath``) in headless Chromium,
   check that it opened as a notebook, and run all cells;
3. wait for the first ``interact`` widget, type a new value into the readout of its last
   slider, and wait for the output (the figure) to change;
4. save screenshots (``_build/screenshots/live-<chapter>-before.png`` / ``-after.png``).

This needs JupyterLab, jupytext and jupyterlab_widgets (the server side) and playwright,
which the book's requirements do not include; use a separate environment::

    python -m venv /tmp/venv-lab
    /tmp/venv-lab/bin/pip install jupyterlab jupytext jupyterlab_widgets playwright pyyaml
    /tmp/venv-lab/bin/python scripts/check_live_widgets.py \\
        --kernel-python .venv/bin/python book/jl_theory.md

Exit status 0 when the output changed, 1 otherwise. It is a manual check (it runs a whole
chapter in a kernel: minutes on a CPU), not part of ``pytest``.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--disable-dev-shm-usage"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_lab(tmp: Path, kernel_python: str, port: int, token: str) -> subprocess.Popen:
    config_dir, data_dir = tmp / "config", tmp / "data"
    kernel_dir = data_dir / "kernels" / "python3"
    kernel_dir.mkdir(parents=True)
    (kernel_dir / "kernel.json").write_text(json.dumps({
        "argv": [kernel_python, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "Python 3 (book)", "language": "python"}))
    env = dict(os.environ, JUPYTER_CONFIG_DIR=str(config_dir), JUPYTER_DATA_DIR=str(data_dir),
               JUPYTER_PATH=str(data_dir), JUPYTER_RUNTIME_DIR=str(tmp / "runtime"))
    bindir = Path(sys.executable).parent
    subprocess.run([str(bindir / "jupytext-config"), "set-default-viewer"], env=env, check=True,
                   capture_output=True)
    cmd = [str(bindir / "jupyter-lab"), "--no-browser", "--ServerApp.ip=127.0.0.1",
           f"--ServerApp.port={port}", f"--IdentityProvider.token={token}",
           f"--ServerApp.root_dir={ROOT}", "--LabApp.news_url=None",
           "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
           "--LabApp.extension_manager=readonly", "--allow-root"]
    log = open(tmp / "lab.log", "w")
    return subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT,
                            start_new_session=True)


def wait_for_server(url: str, proc: subprocess.Popen, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError("JupyterLab exited early")
        try:
            urllib.request.urlopen(url, timeout=5)
            return
        except Exception:
            time.sleep(1)
    raise TimeoutError(f"JupyterLab did not answer at {url}")


def check(chapter: str, base: str, token: str, chromium: str, run_timeout_s: float) -> bool:
    from playwright.sync_api import sync_playwright

    shots = ROOT / "_build" / "screenshots"
    shots.mkdir(parents=True, exist_ok=True)
    stem = Path(chapter).stem
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=chromium, headless=True, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.goto(f"{base}lab/tree/{chapter}?token={token}", timeout=120_000)
        page.wait_for_selector(".jp-NotebookPanel, .jp-FileEditor", timeout=120_000)
        if page.locator(".jp-NotebookPanel").count() == 0:
            print(f"FAIL: {chapter} opened as a text file, not as a notebook")
            return False
        print(f"{chapter} opened as a notebook; running all cells")
        page.wait_for_selector(".jp-Notebook-ExecutionIndicator[data-status='idle'], "
                               ".jp-Notebook-ExecutionIndicator", timeout=120_000)
        time.sleep(3)  # let the kernel start
        page.locator(".lm-MenuBar-itemLabel", has_text=re.compile(r"^Run$")).click()
        page.locator(".lm-Menu-itemLabel", has_text=re.compile(r"^Run All Cells$")).click()

        interact = page.locator(".widget-interact").first
        interact.wait_for(state="attached", timeout=run_timeout_s * 1000)
        img = interact.locator(".widget-output img")
        img.first.wait_for(state="attached", timeout=run_timeout_s * 1000)
        interact.scroll_into_view_if_needed()
        before = img.first.get_attribute("src")
        interact.screenshot(path=str(shots / f"live-{stem}-before.png"))
        errors = page.locator(".jp-OutputArea-output[data-mime-type="
                              "'application/vnd.jupyter.stderr']", has_text="Error").count()

        readouts = interact.locator(".widget-readout")
        n = readouts.count()
        if n == 0:
            print("FAIL: the widget has no slider readout to edit")
            return False
        readout = readouts.nth(n - 1)
        old_value = readout.inner_text().strip()
        readout.click()
        page.keyboard.press("Control+A")
        new_value = "50" if old_value != "50" else "60"
        page.keyboard.type(new_value)
        page.keyboard.press("Enter")
        print(f"moved the last slider from {old_value} to {new_value}")

        deadline = time.monotonic() + 120
        after = before
        while time.monotonic() < deadline and after == before:
            time.sleep(0.5)
            if img.count():
                after = img.first.get_attribute("src")
        interact.screenshot(path=str(shots / f"live-{stem}-after.png"))
        browser.close()
    if errors:
        print(f"FAIL: {errors} error output(s) in the notebook")
        return False
    if after == before:
        print("FAIL: the widget's output did not change")
        return False
    print("OK: the widget's output changed (screenshots in _build/screenshots/)")
    return True


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("chapter", nargs="?", default="book/jl_theory.md")
    ap.add_argument("--kernel-python", default=sys.executable,
                    help="python of an environment with the book's requirements")
    ap.add_argument("--chromium", default="/usr/bin/chromium")
    ap.add_argument("--run-timeout", type=float, default=480, help="seconds to run the chapter")
    args = ap.parse_args()
    port, token = free_port(), secrets.token_hex(16)
    base = f"http://127.0.0.1:{port}/"
    with tempfile.TemporaryDirectory() as tmp:
        proc = start_lab(Path(tmp), args.kernel_python, port, token)
        try:
            wait_for_server(f"{base}api/status?token={token}", proc)
            ok = check(args.chapter, base, token, args.chromium, args.run_timeout)
        except Exception as exc:
            print(f"FAIL: {exc!r}")
            ok = False
        finally:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
                try:
                    proc.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    os.killpg(proc.pid, signal.SIGKILL)
        if not ok:
            print((Path(tmp) / "lab.log").read_text()[-3000:])
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
