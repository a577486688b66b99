"""The built site, read in a real browser (headless Chromium driven by Playwright).

Serves ``_build/html`` on 127.0.0.1 (an ephemeral port, a daemon thread that stops when
the module's tests end, or after ``SERVER_LIFETIME_S`` at the latest) and opens every page
in ``_toc.yml``, plus the index, search, general-index and module-index pages, once in the
light theme and once in the dark. A page fails when it has

- mathematics MathJax did not render (a ``.math`` element with no ``mjx-container``, raw TeX
  such as ``$$``, ``\\begin``, ``\\frac`` in a text node outside code, or a MathJax error),
- a broken image (``naturalWidth == 0``),
- a request to any host but the local server, a response >= 400, or a failed request,
- a console error or an uncaught page error,
- a link to a local page that does not exist, or to an ``#anchor`` the target lacks,
- a widget (``application/vnd.jupyter.widget-view+json``) that did not render its controls,
  or an ``interact`` whose output area stayed empty.

Screenshots go to ``_build/screenshots/<page>-<theme>.png`` (full page), and each widget
to ``<page>-widget<k>-<theme>.png``.

Where there is no built site (or one older than ``_toc.yml``: a page in the toc has no HTML),
no Playwright or no Chromium, the tests SKIP with the reason;
with ``KEXUE_BROWSER_REQUIRED=1`` (as in ``.ci/run``) they FAIL instead. Environment:
``KEXUE_SITE`` (default ``_build/html``), ``KEXUE_CHROMIUM`` (default: ``/usr/bin/chromium``,
then ``chromium``, ``chromium-browser``, ``google-chrome`` on ``PATH``).
"""

from __future__ import annotations

import functools
import http.server
import json
import os
import re
import shutil
import threading
import time
import urllib.error
import urllib.request
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urljoin, urlsplit

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
SITE = Path(os.environ.get("KEXUE_SITE", ROOT / "_build" / "html"))
SHOTS = ROOT / "_build" / "screenshots"
REQUIRED = os.environ.get("KEXUE_BROWSER_REQUIRED") == "1"
SERVER_LIFETIME_S = 1800
NAV_TIMEOUT_MS = 90_000
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--disable-dev-shm-usage"]

# TeX that must never be visible as text once MathJax has run
RAW_TEX = re.compile(
    r"\$\$|\\\(|\\\)|\\\[|\\\]"        # display/inline delimiters
    r"|\\[A-Za-z]{2,}"                      # any TeX control word: \frac, \log, \begin, ...
    r"|\$[^$\s][^$\n]*[\\^_][^$\n]*\$")    # $...$ with a macro, sub- or superscript

WIDGET_VIEW = 'script[type="application/vnd.jupyter.widget-view+json"]'


def _unavailable(reason: str):
    if REQUIRED:
        pytest.fail(f"{reason} (KEXUE_BROWSER_REQUIRED=1, so this fails instead of skipping)")
    pytest.skip(reason)


def _chromium() -> str | None:
    env = os.environ.get("KEXUE_CHROMIUM")
    if env:
        return env if Path(env).exists() else None
    if Path("/usr/bin/chromium").exists():
        return "/usr/bin/chromium"
    for name in ("chromium", "chromium-browser", "google-chrome"):
        if shutil.which(name):
            return shutil.which(name)
    return None


def _toc_pages() -> list[str]:
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text(encoding="utf-8"))
    files = [toc["root"]]
    for part in toc.get("parts", []):
        files += [c["file"] for c in part.get("chapters", [])]
    for chapter in toc.get("chapters", []):
        files.append(chapter["file"])
    return files


def _is_notebook(docname: str) -> bool:
    src = ROOT / f"{docname}.md"
    return src.exists() and "kernelspec:" in src.read_text(encoding="utf-8")[:2000]


TOC = _toc_pages()
PAGES = [f"{d}.html" for d in TOC] + ["index.html", "search.html", "genindex.html",
                                     "py-modindex.html"]
NOTEBOOKS = [d for d in TOC if _is_notebook(d)]


# --------------------------------------------------------------------------- fixtures

class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):  # keep pytest's output clean
        pass


@pytest.fixture(scope="module")
def site():
    """Base URL of the built site, served on 127.0.0.1 by a bounded daemon thread."""
    if not (SITE / "index.html").exists():
        _unavailable(f"no built site at {SITE} (build it: jupyter-book build . -W -n --keep-going)")
    missing = [d for d in TOC if not (SITE / f"{d}.html").exists()]
    if missing:
        _unavailable(f"the site at {SITE} is older than _toc.yml (no page for {missing}); "
                     "rebuild it: jupyter-book build . -W -n --keep-going")
    handler = functools.partial(_QuietHandler, directory=str(SITE))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, name="site-server", daemon=True)
    thread.start()
    deadline = threading.Timer(SERVER_LIFETIME_S, server.shutdown)
    deadline.daemon = True
    deadline.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        deadline.cancel()
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


@pytest.fixture(scope="module")
def browser(site):
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _unavailable("the Python package playwright is not installed (pip install playwright)")
    exe = _chromium()
    if exe is None:
        _unavailable("no Chromium found (apt-get install chromium, or set KEXUE_CHROMIUM)")
    with sync_playwright() as pw:
        # Playwright starts Chromium with a fresh temporary profile (--user-data-dir)
        browser = pw.chromium.launch(executable_path=exe, headless=True, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


class _Anchors(HTMLParser):
    def __init__(self):
        super().__init__()
        self.ids: set[str] = set()

    def handle_starttag(self, tag, attrs):
        for k, v in attrs:
            if k == "id" or (k == "name" and tag == "a"):
                self.ids.add(v or "")


@functools.lru_cache(maxsize=None)
def _fetch(url: str) -> tuple[int, set[str]]:
    """Status of a local URL and, for HTML, the ids/names its anchors can target."""
    try:
        with urllib.request.urlopen(url, timeout=30) as r:
            body = r.read()
            status = r.status
            ctype = r.headers.get("Content-Type", "")
    except urllib.error.HTTPError as e:
        return e.code, set()
    ids: set[str] = set()
    if "html" in ctype:
        p = _Anchors()
        p.feed(body.decode("utf-8", "replace"))
        ids = p.ids
    return status, ids


# --------------------------------------------------------------------------- page checks

_WAIT_FOR_MATHJAX = """
async () => {
  if (!window.MathJax) return 'no-mathjax';
  for (let i = 0; i < 600 && !(MathJax.startup && MathJax.startup.promise); i++)
    await new Promise(r => setTimeout(r, 50));
  await MathJax.startup.promise;
  if (MathJax.typesetPromise) await MathJax.typesetPromise();
  return 'typeset';
}
"""

_RAW_TEXT_NODES = """
() => {
  const skip = 'pre, code, script, style, textarea, kbd, samp, svg, mjx-container, '
             + '.MathJax, .highlight, .search, #searchbox, .bd-search, .widget-output';
  const root = document.querySelector('main') || document.body;
  const walker = document.createTreeWalker(root, NodeFilter.SHOW_TEXT);
  const out = [];
  for (let n = walker.nextNode(); n; n = walker.nextNode()) {
    const el = n.parentElement;
    if (!el || el.closest(skip)) continue;
    if (el.checkVisibility && !el.checkVisibility()) continue;  // e.g. the print-only header
    if (n.textContent.trim()) out.push(n.textContent);
  }
  return out;
}
"""

_MATH_STATE = """
() => ({
  unrendered: Array.from(document.querySelectorAll('.math, span.math, div.math'))
      .filter(e => !e.querySelector('mjx-container')).map(e => e.textContent.slice(0, 80)),
  errors: Array.from(document.querySelectorAll('mjx-merror, [data-mjx-error]'))
      .map(e => (e.getAttribute('data-mjx-error') || e.textContent).slice(0, 120)),
})
"""

_BROKEN_IMAGES = """
async () => {
  const imgs = Array.from(document.images);
  imgs.forEach(i => { i.loading = 'eager'; });
  await Promise.all(imgs.map(i => i.complete ? null :
      new Promise(r => { i.addEventListener('load', r); i.addEventListener('error', r);
                         setTimeout(r, 15000); })));
  return imgs.filter(i => i.naturalWidth === 0).map(i => i.currentSrc || i.src);
}
"""

_WIDGETS_RENDERED = """
() => {
  const views = Array.from(document.querySelectorAll('%s'));
  const rendered = v => {
    const prev = v.previousElementSibling;
    if (!prev || !prev.classList.contains('widget-subarea')) return false;
    const w = prev.querySelector('.jupyter-widgets, .lm-Widget');
    const box = prev.getBoundingClientRect();
    return !!w && box.width > 0 && box.height > 0;
  };
  return views.length > 0 && views.every(rendered);
}
""" % WIDGET_VIEW

_WIDGET_REPORT = """
() => Array.from(document.querySelectorAll('%s')).map(v => {
  const sub = v.previousElementSibling;
  const ok = !!sub && sub.classList.contains('widget-subarea');
  return {
    model: JSON.parse(v.textContent).model_id,
    rendered: ok && !!sub.querySelector('.jupyter-widgets, .lm-Widget'),
    controls: ok ? sub.querySelectorAll('.widget-slider, .widget-hslider, .widget-dropdown, '
        + '.widget-button, .widget-checkbox, .widget-text, .widget-toggle-buttons, '
        + '.widget-radio, .widget-select, .widget-play').length : 0,
    interacts: ok ? Array.from(sub.querySelectorAll('.widget-interact')).map(i => {
        const out = i.querySelector('.widget-output');
        return out ? out.querySelectorAll('img, pre, .jp-OutputArea-output').length : -1;
    }) : [],
  };
})
""" % WIDGET_VIEW


def _open(browser, site: str, page: str, theme: str):
    """Open ``page`` in a fresh context; return (page, problems) with network/console taps."""
    context = browser.new_context(color_scheme=theme, viewport={"width": 1280, "height": 900})
    context.add_init_script(f"try {{ localStorage.setItem('mode', '{theme}'); "
                            f"localStorage.setItem('theme', '{theme}'); }} catch (e) {{}}")
    host = urlsplit(site).netloc
    problems: list[str] = []

    def route(r):
        if urlsplit(r.request.url).netloc != host:
            problems.append(f"request leaves localhost: {r.request.url}")
            r.abort()
        else:
            r.continue_()

    context.route("**/*", route)
    p = context.new_page()
    p.pending = {}  # url -> count of requests in flight
    p.on("request", lambda r: p.pending.__setitem__(r.url, p.pending.get(r.url, 0) + 1))
    done = lambda r: p.pending.pop(r.url, None) if p.pending.get(r.url, 0) <= 1 \
        else p.pending.__setitem__(r.url, p.pending[r.url] - 1)
    p.on("requestfinished", done)
    p.on("requestfailed", done)
    p.on("console", lambda m: problems.append(f"console {m.type}: {m.text}")
         if m.type == "error" else None)
    p.on("pageerror", lambda e: problems.append(f"page error: {e}"))
    p.on("requestfailed", lambda r: problems.append(
        f"request failed: {r.url} ({r.failure})")
        if urlsplit(r.url).netloc == host else None)
    p.on("response", lambda r: problems.append(f"HTTP {r.status}: {r.url}")
         if r.status >= 400 else None)
    p.goto(urljoin(site, page), wait_until="load", timeout=NAV_TIMEOUT_MS)
    return context, p, problems


def _settle(p, quiet_s: float = 1.0, limit_s: float = NAV_TIMEOUT_MS / 1000) -> list[str]:
    """Wait until no request has been in flight for ``quiet_s``; report any that never end."""
    quiet_since = time.monotonic()
    deadline = time.monotonic() + limit_s
    while time.monotonic() < deadline:
        p.wait_for_timeout(100)
        if p.pending:
            quiet_since = time.monotonic()
        elif time.monotonic() - quiet_since >= quiet_s:
            return []
    return [f"request still in flight after {limit_s:.0f} s: {u}" for u in p.pending]


def _check_links(p, site: str) -> list[str]:
    problems = []
    hrefs = p.eval_on_selector_all("a[href]", "as => as.map(a => a.href)")
    for href in sorted(set(hrefs)):
        parts = urlsplit(href)
        if parts.scheme not in ("http", "https") or parts.netloc != urlsplit(site).netloc:
            continue
        target = href.split("#", 1)[0]
        status, ids = _fetch(target)
        if status >= 400:
            problems.append(f"broken link: {href} (HTTP {status})")
        elif parts.fragment and unquote(parts.fragment) not in ids:
            problems.append(f"broken anchor: {href}")
    return problems


@pytest.mark.parametrize("theme", ["light", "dark"])
@pytest.mark.parametrize("page", PAGES)
def test_page_renders(browser, site, page, theme):
    context, p, problems = _open(browser, site, page, theme)
    try:
        if page == "index.html":  # the root redirects to the introduction
            p.wait_for_url(f"**/{TOC[0]}.html", timeout=NAV_TIMEOUT_MS)
            p.wait_for_load_state("load")
        problems += _settle(p)
        assert p.evaluate("document.documentElement.dataset.theme") == theme

        p.evaluate(_WAIT_FOR_MATHJAX)
        math = p.evaluate(_MATH_STATE)
        problems += [f"math not rendered: {t!r}" for t in math["unrendered"]]
        problems += [f"MathJax error: {t!r}" for t in math["errors"]]
        for text in p.evaluate(_RAW_TEXT_NODES):
            m = RAW_TEX.search(text)
            if m:
                problems.append(f"raw TeX in the text: {m.group(0)!r} in {text.strip()[:100]!r}")

        n_views = p.locator(WIDGET_VIEW).count()
        if n_views:
            try:
                p.wait_for_function(_WIDGETS_RENDERED, timeout=60_000)
            except Exception:  # reported below, view by view
                pass
            for k, w in enumerate(p.evaluate(_WIDGET_REPORT)):
                if not w["rendered"]:
                    problems.append(f"widget {w['model']} did not render")
                elif not w["controls"]:
                    problems.append(f"widget {w['model']} rendered no controls")
                if any(n <= 0 for n in w["interacts"]):
                    problems.append(f"widget {w['model']}: interact output is empty")

        problems += [f"broken image: {src}" for src in p.evaluate(_BROKEN_IMAGES)]
        problems += _check_links(p, site)

        SHOTS.mkdir(parents=True, exist_ok=True)
        stem = page.removesuffix(".html").replace("/", "_")
        p.screenshot(path=str(SHOTS / f"{stem}-{theme}.png"), full_page=True)
        subareas = p.locator(".widget-subarea")
        for k in range(subareas.count()):
            subareas.nth(k).scroll_into_view_if_needed()
            subareas.nth(k).screenshot(path=str(SHOTS / f"{stem}-widget{k}-{theme}.png"))
    finally:
        context.close()
    assert not problems, f"{page} ({theme}):\n  " + "\n  ".join(problems)


def test_search_works_offline(browser, site):
    context, p, problems = _open(browser, site, "search.html?q=Johnson", "light")
    try:
        p.wait_for_function(
            "() => document.querySelectorAll('ul.search li, #search-results li').length > 0",
            timeout=NAV_TIMEOUT_MS)
        hits = p.eval_on_selector_all("ul.search li a, #search-results li a",
                                      "as => as.map(a => a.getAttribute('href'))")
    finally:
        context.close()
    assert not problems, "\n".join(problems)
    assert any("jl_theory" in h for h in hits), hits


@pytest.mark.parametrize("doc", NOTEBOOKS)
def test_launch_and_download_buttons(browser, site, doc):
    """Binder opens the chapter's source; Colab and the download button get its .ipynb."""
    context, p, problems = _open(browser, site, f"{doc}.html", "light")
    try:
        links = p.eval_on_selector_all(
            ".dropdown-launch-buttons a, .dropdown-download-buttons a",
            "as => as.map(a => a.getAttribute('href') || '')")
        has_thebe = p.locator(".btn-launch-thebe").count() > 0
        config = yaml.safe_load((ROOT / "_config.yml").read_text(encoding="utf-8"))
    finally:
        context.close()
    assert not problems, "\n".join(problems)
    org_repo = urlsplit(config["repository"]["url"].rstrip("/")).path.strip("/")

    binder = [h for h in links if "mybinder.org" in h]
    assert binder, f"no Binder button on {doc}: {links}"
    m = re.search(r"urlpath=lab/tree/(.+)$", binder[0])
    assert f"/v2/gh/{org_repo}/" in binder[0] and m and (ROOT / unquote(m.group(1))).exists()

    colab = [h for h in links if "colab.research.google.com" in h]
    assert colab, f"no Colab button on {doc}: {links}"
    m = re.search(rf"/github/{re.escape(org_repo)}/blob/[^/]+/(notebooks/.+\.ipynb)$", colab[0])
    assert m, colab[0]
    assert has_thebe, "no Live Code (Thebe) button"

    ipynb = [h for h in links if h.endswith(".ipynb")]
    assert ipynb, f"no .ipynb download on {doc}: {links}"
    for rel in (m.group(1), f"_sources/{doc}.ipynb"):
        nb = _published_notebook(site, rel)
        code = [c for c in nb["cells"] if c["cell_type"] == "code"]
        assert code and any(c.get("outputs") for c in code), f"{rel} has no outputs"
        assert "application/vnd.jupyter.widget-state+json" in nb["metadata"].get("widgets", {}), \
            f"{rel}: no widget state"


def _published_notebook(site: str, rel: str) -> dict:
    with urllib.request.urlopen(urljoin(site, rel), timeout=30) as r:
        return json.loads(r.read())


@pytest.mark.parametrize("doc", NOTEBOOKS)
def test_published_notebook_installs_the_helpers(site, doc):
    """In Colab (or any kernel without the helpers) the first cell installs them from
    ``repository.url``: the chapter's first code cell is the install cell (README)."""
    repo = yaml.safe_load((ROOT / "_config.yml").read_text(encoding="utf-8"))["repository"]["url"]
    nb = _published_notebook(site, f"notebooks/{doc}.ipynb")
    first = "".join(next(c for c in nb["cells"] if c["cell_type"] == "code")["source"])
    assert "import kexue_helpers" in first and f"git+{repo.rstrip('/')}" in first, \
        f"{doc}: the first code cell must be the install cell (copy it from book/jl_theory.md)"
