"""Open a published notebook in JupyterLab in headless Chromium, check it reads, screenshot it.

This is what a reader gets from the Binder button (JupyterLab on the published notebook)
and, near enough, from Colab. The script serves ``<site>/notebooks`` with JupyterLab (no
kernel is started: the notebook is only opened and rendered), opens one chapter in Debian's
Chromium through Playwright, waits for MathJax, and fails when the rendered Markdown shows
raw MyST (roles, directive fences, label lines), a TeX error, or no mathematics at all. It
writes a screenshot of the first screens.

Usage::

    python scripts/check_jupyterlab_view.py [--site _build/html] [--chapter jl_theory]
        [--jupyter /path/to/jupyter] [--out _build/screenshots/jupyterlab-jl_theory.png]

JupyterLab is not one of the book's requirements: install it where you run this
(``pip install jupyterlab``, in this or another environment) and pass ``--jupyter``.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RAW = re.compile(r"\{(glue|eq|cite|numref|prf|doc|ref|exercise|solution)[\w:.-]*\}"
                 r"|^\s*\([\w.-]+\)=\s*$|```\{|:::\{", re.M)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--site", default=str(ROOT / "_build" / "html"))
    ap.add_argument("--chapter", default="jl_theory")
    ap.add_argument("--jupyter", default=shutil.which("jupyter") or "jupyter")
    ap.add_argument("--chromium", default=os.environ.get("KEXUE_CHROMIUM", "/usr/bin/chromium"))
    ap.add_argument("--out", default=None)
    args = ap.parse_args()

    root = Path(args.site) / "notebooks"
    nb = root / "book" / f"{args.chapter}.ipynb"
    if not nb.exists():
        print(f"no published notebook at {nb}: build the site first", file=sys.stderr)
        return 2
    out = Path(args.out or ROOT / "_build" / "screenshots" / f"jupyterlab-{args.chapter}.png")
    out.parent.mkdir(parents=True, exist_ok=True)
    port = _free_port()
    lab = subprocess.Popen(
        [args.jupyter, "lab", "--no-browser", f"--port={port}", "--ip=127.0.0.1",
         "--IdentityProvider.token=", "--ServerApp.password=",
         f"--ServerApp.root_dir={root}", "--allow-root"],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        from playwright.sync_api import sync_playwright

        deadline = time.time() + 60
        while time.time() < deadline:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                time.sleep(0.5)
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=args.chromium, headless=True,
                                         args=["--no-sandbox", "--disable-gpu"])
            page = browser.new_page(viewport={"width": 1280, "height": 1000})
            page.goto(f"http://127.0.0.1:{port}/lab/tree/book/{args.chapter}.ipynb")
            page.wait_for_selector(".jp-RenderedMarkdown", timeout=90_000)
            # JupyterLab renders cells lazily as they scroll into view: walk the notebook.
            panel = page.locator(".jp-WindowedPanel-outer").first
            for _ in range(400):
                done = page.evaluate(
                    "() => { const p = document.querySelector('.jp-WindowedPanel-outer');"
                    " if (!p) return true; p.scrollTop += 900;"
                    " return p.scrollTop + p.clientHeight >= p.scrollHeight - 2; }")
                page.wait_for_timeout(60)
                if done:
                    break
            page.wait_for_timeout(2000)
            text = page.evaluate(
                "() => Array.from(document.querySelectorAll('.jp-RenderedMarkdown'))"
                ".map(e => e.innerText).join('\\n')")
            n_math = page.locator(".jp-RenderedMarkdown mjx-container").count()
            n_err = page.locator(".jp-RenderedMarkdown mjx-merror").count()
            page.evaluate("() => { const p = document.querySelector('.jp-WindowedPanel-outer');"
                          " if (p) p.scrollTop = 0; }")
            page.wait_for_timeout(1500)
            page.screenshot(path=str(out))
            del panel
            browser.close()
    finally:
        lab.terminate()
        lab.wait(timeout=20)
    raw = sorted(set(m.group(0) for m in RAW.finditer(text)))
    print(f"{args.chapter}: {len(text)} characters of rendered Markdown, {n_math} formulas, "
          f"{n_err} TeX errors, raw MyST: {raw or 'none'}; screenshot {out}")
    ok = not raw and n_err == 0 and n_math > 0
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
