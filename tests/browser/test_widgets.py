"""The explorable widgets on a built site, in headless Chromium.

Two sites are tested:

- a fixture book (``tests/fixtures/widgets_book``: two widgets, one with a dropdown), built
  by this module into ``_build/widgets_fixture/`` when missing or older than its inputs;
- the book itself (``_build/html``, or ``KEXUE_SITE``), where every page that has an
  explorable widget is found automatically. Its pages are driven (:func:`check_widgets_on`)
  and their first load measured (:func:`first_load_on`) in each page's one visit,
  ``test_site.visit``: ``test_site.py`` holds those two tests; this module, the tests
  without JavaScript and the markup checks.

For every widget of every page, with JavaScript on, the test moves every control through
every one of its values (real key presses on the sliders, real selections in the
dropdowns) and checks after each move that

- the figure changes and shows the frame of that setting: the pixels Chromium draws equal
  those of the frame file the test computes for the setting (row-major over the controls),
- the readout shows the value,
- the new figure is on screen within 100 ms of the key press (measured in the page) at
  the median over all the page's moves, and no move takes over 1 s (a single move on a
  shared CI machine measures the machine's load as much as the widget: the browser tests
  run several pages at once),

and then moves the controls to the setting that the build drew through the live ipywidgets
widget (``check`` in the widget's data) and compares the pixels with that drawing. With
JavaScript off, each widget is its default frame as a figure, with alt text, a numbered
caption and no controls. Every chapter page loads at most 3 MB on first load (uncompressed
bytes of every response, until the network has been quiet for a second), loads no frame but
the default before the reader points at a widget, and no request leaves localhost. Pages
must hold no ``ipywidgets`` view (a control that would do nothing on the static site).
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import unquote, urljoin, urlsplit

import numpy as np
import pytest
import yaml


from .conftest import keep_local, unavailable  # noqa: E402


ROOT = Path(__file__).resolve().parents[2]
SITE = Path(os.environ.get("KEXUE_SITE", ROOT / "_build" / "html"))
FIXTURE = ROOT / "tests" / "fixtures" / "widgets_book"
FIXTURE_OUT = ROOT / "_build" / "widgets_fixture"
FIXTURE_INPUTS = [*FIXTURE.rglob("*.md"), *FIXTURE.rglob("*.yml"),
                  ROOT / "kexue_helpers" / "widgets.py", *(ROOT / "_ext").glob("*.py"),
                  *(p for p in (ROOT / "static").rglob("*") if p.is_file())]
MAX_FIRST_LOAD = 3_000_000   # bytes, uncompressed
MAX_RESPONSE_MS = 100.0       # the median move
MAX_SINGLE_MOVE_MS = 1000.0   # any move
NAV_TIMEOUT_MS = 90_000
WIDGET_VIEW = 'script[type="application/vnd.jupyter.widget-view+json"]'


# --------------------------------------------------------------------------- sites

def _toc_pages(root: Path) -> list[str]:
    toc = yaml.safe_load((root / "_toc.yml").read_text(encoding="utf-8"))
    files = [toc["root"]]
    for part in toc.get("parts", []):
        files += [c["file"] for c in part.get("chapters", [])]
    files += [c["file"] for c in toc.get("chapters", [])]
    return [f"{f}.html" for f in files]


def _pages_with_widgets(html_dir: Path) -> list[str]:
    if not html_dir.exists():
        return []
    return sorted(p.relative_to(html_dir).as_posix() for p in html_dir.rglob("*.html")
                  if '<div class="kexue-explorable"' in p.read_text(encoding="utf-8",
                                                                     errors="replace"))


BOOK_PAGES = _toc_pages(ROOT)
BOOK_WIDGET_PAGES = _pages_with_widgets(SITE)


@pytest.fixture(scope="session")
def fixture_html() -> Path:
    """The fixture book's site, built (``jupyter-book build``) when missing or stale."""
    html = FIXTURE_OUT / "_build" / "html"
    page = html / "widgets_demo.html"
    newest = max(p.stat().st_mtime for p in FIXTURE_INPUTS)
    if not page.exists() or page.stat().st_mtime < newest:
        # from scratch: an incremental build keeps stale copies of changed static files
        shutil.rmtree(FIXTURE_OUT, ignore_errors=True)
        exe = Path(sys.executable).parent / "jupyter-book"
        env = dict(os.environ, PYTHONPATH=os.pathsep.join(
            [str(ROOT), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep))
        env.pop("KEXUE_WIDGETS", None)
        r = subprocess.run([str(exe), "build", str(FIXTURE), "--path-output",
                            str(FIXTURE_OUT), "-W", "-n", "--keep-going"], cwd=ROOT,
                           env=env, capture_output=True, text=True, timeout=900)
        if r.returncode != 0 or not page.exists():
            pytest.fail("building the fixture book failed:\n" + (r.stdout + r.stderr)[-4000:])
    return html


@pytest.fixture(scope="session")
def book_html() -> Path:
    if not (SITE / "index.html").exists():
        unavailable(f"no built site at {SITE} (build it: jupyter-book build . -W -n "
                    "--keep-going)")
    return SITE


# --------------------------------------------------------------------------- helpers

def _open(chromium, base: str, page: str, *, javascript: bool = True):
    """A fresh context and page; every response and every problem is recorded."""
    context = chromium.new_context(viewport={"width": 1280, "height": 900},
                                   java_script_enabled=javascript)
    context.add_init_script("try { localStorage.setItem('mode', 'light'); "
                            "localStorage.setItem('theme', 'light'); } catch (e) {}")
    problems = keep_local(context, base)
    p = context.new_page()
    p.responses = []
    p.pending = set()
    p.on("request", lambda r: p.pending.add(id(r)))
    p.on("requestfinished", lambda r: p.pending.discard(id(r)))
    p.on("requestfailed", lambda r: (p.pending.discard(id(r)), problems.append(
        f"request failed: {r.url} ({r.failure})")))
    p.on("response", lambda r: p.responses.append(r))
    p.on("response", lambda r: problems.append(f"HTTP {r.status}: {r.url}")
         if r.status >= 400 else None)
    p.on("console", lambda m: problems.append(f"console {m.type}: {m.text}")
         if m.type == "error" else None)
    p.on("pageerror", lambda e: problems.append(f"page error: {e}"))
    p.goto(urljoin(base, page), wait_until="load", timeout=NAV_TIMEOUT_MS)
    return context, p, problems


def _settle(p, quiet_s: float = 1.0, limit_s: float = 60.0) -> None:
    quiet_since = time.monotonic()
    deadline = time.monotonic() + limit_s
    while time.monotonic() < deadline:
        p.wait_for_timeout(100)
        if p.pending:
            quiet_since = time.monotonic()
        elif time.monotonic() - quiet_since >= quiet_s:
            return


@functools.lru_cache(maxsize=None)
def _pixel_hash(path: Path) -> str:
    from PIL import Image

    with Image.open(path) as im:
        return hashlib.sha256(np.asarray(im.convert("RGBA")).tobytes()).hexdigest()


def _file_of(html_dir: Path, page_url: str, url: str) -> Path:
    return html_dir / unquote(urlsplit(urljoin(page_url, url)).path.lstrip("/"))


_SPECS = """
() => Array.from(document.querySelectorAll('.kexue-explorable')).map(root =>
  JSON.parse(root.querySelector('script.kexue-explorable-data').textContent))
"""

_DISPLAYED = """
async (key) => {
  const root = document.querySelector(`.kexue-explorable[data-key="${key}"]`);
  const img = root.querySelector('img.kexue-explorable-frame');
  if (!img.complete) await new Promise(r => img.addEventListener('load', r, {once: true}));
  const c = document.createElement('canvas');
  c.width = img.naturalWidth; c.height = img.naturalHeight;
  const g = c.getContext('2d');
  g.drawImage(img, 0, 0);
  const data = g.getImageData(0, 0, c.width, c.height).data;
  const h = new Uint8Array(await crypto.subtle.digest('SHA-256', data));
  return {
    src: img.getAttribute('src'), frame: root.dataset.frame,
    hash: Array.from(h).map(b => b.toString(16).padStart(2, '0')).join(''),
    readouts: Array.from(root.querySelectorAll('output')).map(o => o.textContent),
  };
}
"""

# t0: the first key press or selection after __kx_arm(); t1: the first animation frame at
# which the widget's image shows ``want`` (a URL) fully loaded.
_ARM = """
() => {
  window.__kx = {t0: null, t1: null};
  if (!window.__kx_listening) {
    window.__kx_listening = true;
    for (const type of ['keydown', 'change', 'input']) {
      document.addEventListener(type, () => {
        if (window.__kx && window.__kx.t0 === null) window.__kx.t0 = performance.now();
      }, true);
    }
  }
}
"""

_SHOWN = """
([key, want]) => {
  const root = document.querySelector(`.kexue-explorable[data-key="${key}"]`);
  const img = root.querySelector('img.kexue-explorable-frame');
  const ok = img.getAttribute('src') === want && img.complete && img.naturalWidth > 0;
  if (ok && window.__kx.t1 === null) window.__kx.t1 = performance.now();
  return ok;
}
"""


def _index(spec: dict, positions: list[int]) -> int:
    idx = 0
    for c, pos in zip(spec["controls"], positions):
        idx = idx * len(c["values"]) + pos
    return idx


def _move(p, spec: dict, i: int, target: int, positions: list[int]) -> float:
    """Move control ``i`` one step (slider) or to ``target`` (dropdown), as a reader does;
    return the milliseconds until the new frame is on screen."""
    c = spec["controls"][i]
    sel = f'.kexue-explorable[data-key="{spec["key"]}"] [data-control="{c["name"]}"]'
    p.evaluate(_ARM)
    if c["kind"] == "number":
        key = "ArrowRight" if target > positions[i] else "ArrowLeft"
        p.locator(sel).press(key)
    else:
        p.locator(sel).select_option(value=str(target))
    positions[i] = target
    want = spec["frames"][_index(spec, positions)]
    p.wait_for_function(_SHOWN, arg=[spec["key"], want], polling="raf", timeout=10_000)
    t = p.evaluate("() => window.__kx")
    assert t["t0"] is not None, f"{spec['key']}: the move of {c['name']} fired no event"
    return t["t1"] - t["t0"]


def _check_widgets(chromium, base: str, html_dir: Path, page: str) -> dict:
    """Open ``page`` and :func:`check_widgets_on` it; console errors fail it too."""
    context, p, problems = _open(chromium, base, page)
    try:
        report = check_widgets_on(p, html_dir, page)
    finally:
        context.close()
    assert not problems, f"{page}:\n  " + "\n  ".join(problems)
    return report


def check_widgets_on(p, html_dir: Path, page: str) -> dict:
    """Drive every explorable widget of the open page ``p`` (light theme, 1280 px) through
    every value of every control, as the module's docstring says; raise AssertionError at
    the first defect. Returns ``{"widgets", "moves", "max_ms", "median_ms"}``. The book's
    pages are checked in the page's one visit (``test_site.visit``), the fixture's here."""
    report = {"widgets": 0, "moves": 0, "max_ms": 0.0, "median_ms": 0.0}
    times: list[float] = []
    p.wait_for_function("() => Array.from(document.querySelectorAll('.kexue-explorable'))"
                        ".every(r => r.dataset.ready === '1')", timeout=NAV_TIMEOUT_MS)
    specs = p.evaluate(_SPECS)
    assert specs, f"{page}: no explorable widget"
    for spec in specs:
        key = spec["key"]
        root = p.locator(f'.kexue-explorable[data-key="{key}"]')
        root.scroll_into_view_if_needed()
        n_controls = root.locator("[data-control]").count()
        assert n_controls == len(spec["controls"]), (key, n_controls)
        positions = [c["default"] for c in spec["controls"]]
        for c in spec["controls"]:  # each control starts at the setting shown
            value = root.locator(f'[data-control="{c["name"]}"]').evaluate("e => e.value")
            assert value == str(c["default"]), \
                f"{page} {key}: {c['name']} starts at position {value}, not {c['default']}"
        shown = p.evaluate(_DISPLAYED, key)
        assert shown["src"] == spec["frames"][spec["default"]]
        # a reader points at the widget before moving a control: the other frames are
        # fetched and decoded then (locally, well within the moment a hand takes)
        root.hover()
        p.wait_for_function("k => document.querySelector(`.kexue-explorable[data-key="
                            "\"${k}\"]`).dataset.prefetched === 'done'", arg=key,
                            timeout=30_000)
        for i, c in enumerate(spec["controls"]):
            n = len(c["values"])
            # through every value: up to the end, down to 0, back to the default
            path = list(range(positions[i] + 1, n)) + list(range(n - 2, -1, -1)) + \
                list(range(1, c["default"] + 1))
            if c["kind"] == "string":
                path = [j for j in range(n) if j != c["default"]] + [c["default"]]
            for target in path:
                before = shown
                ms = _move(p, spec, i, target, positions)
                shown = p.evaluate(_DISPLAYED, key)
                idx = _index(spec, positions)
                expected = _file_of(html_dir, p.url, spec["frames"][idx])
                where = f"{page} {key}: {c['name']} -> {c['labels'][target]}"
                assert shown["frame"] == str(idx), where
                assert shown["hash"] != before["hash"], f"{where}: the figure did not change"
                assert shown["hash"] == _pixel_hash(expected), \
                    f"{where}: the figure is not the frame for this setting"
                assert c["labels"][target] in shown["readouts"] or c["kind"] == "string", \
                    f"{where}: readout {shown['readouts']}"
                assert ms <= MAX_SINGLE_MOVE_MS, f"{where}: {ms:.0f} ms to show the frame"
                times.append(ms)
                report["moves"] += 1
                report["max_ms"] = max(report["max_ms"], ms)
        # the setting the build drew through the live ipywidgets widget
        check = spec["check"]
        for i, c in enumerate(spec["controls"]):
            target = c["values"].index(check["setting"][c["name"]])
            while positions[i] != target:
                step = target if c["kind"] == "string" else \
                    positions[i] + (1 if target > positions[i] else -1)
                _move(p, spec, i, step, positions)
        assert _index(spec, positions) == check["index"]
        shown = p.evaluate(_DISPLAYED, key)
        live = _file_of(html_dir, p.url, check["url"])
        assert shown["hash"] == _pixel_hash(live), \
            f"{page} {key}: the frame for {check['setting']} differs from the live widget's"
        report["widgets"] += 1
    report["median_ms"] = statistics.median(times)
    assert report["median_ms"] <= MAX_RESPONSE_MS, \
        f"{page}: the median move takes {report['median_ms']:.0f} ms to show its frame " \
        f"(over {len(times)} moves; slowest {max(times):.0f} ms)"
    return report


def _check_no_js(chromium, base: str, page: str) -> int:
    context, p, problems = _open(chromium, base, page, javascript=False)
    try:
        figures = p.evaluate("""
() => Array.from(document.querySelectorAll('.kexue-explorable')).map(root => {
  const img = root.querySelector('img.kexue-explorable-frame');
  const fig = root.closest('figure');
  const box = img.getBoundingClientRect();
  return {key: root.dataset.key, loaded: img.complete && img.naturalWidth > 0,
          visible: box.width > 100 && box.height > 50, alt: img.alt,
          caption: fig ? (fig.querySelector('figcaption') || {}).textContent || '' : '',
          controls: root.querySelectorAll('input, select').length,
          note: !!root.querySelector('noscript')};
})""")
        for _ in range(50):
            if all(f["loaded"] for f in figures):
                break
            p.wait_for_timeout(100)
            figures = [dict(f, loaded=p.evaluate(
                "k => { const i = document.querySelector(`.kexue-explorable[data-key=\"${k}\"] "
                "img`); return i.complete && i.naturalWidth > 0; }", f["key"]))
                for f in figures]
    finally:
        context.close()
    assert figures, f"{page}: no explorable widget"
    for f in figures:
        assert f["loaded"] and f["visible"], f"{page} {f['key']}: no static figure without JS"
        assert f["alt"].strip(), f"{page} {f['key']}: no alt text"
        assert f["caption"].strip().startswith("Fig."), f"{page} {f['key']}: {f['caption']!r}"
        assert f["controls"] == 0, f"{page} {f['key']}: dead controls without JavaScript"
        assert f["note"], f"{page} {f['key']}: no note for readers without JavaScript"
    # with JavaScript off Chromium refuses the preloaded scripts ("csp"): expected
    problems = [m for m in problems if not m.endswith("(csp)")]
    assert not problems, "\n".join(problems)
    return len(figures)


def _first_load(chromium, base: str, page: str) -> tuple[int, list[str], list[str]]:
    """(bytes, widget frames fetched, problems) of a first visit without interaction."""
    context, p, problems = _open(chromium, base, page)
    try:
        _settle(p)
        total, frames, found = first_load_on(p)
    finally:
        context.close()
    return total, frames, problems + found


def first_load_on(p) -> tuple[int, list[str], list[str]]:
    """(bytes, widget frames fetched, problems) of the page ``p``, opened with a response
    log (``p.responses``) and settled, before anything touched it: the uncompressed bytes
    of every response, the widget frames fetched besides each widget's default, and an
    ``ipywidgets`` view if the page holds one."""
    total = 0
    urls = []
    for r in list(p.responses):
        try:
            total += len(r.body())
        except Exception:  # a redirect has no body
            pass
        urls.append(r.url)
    defaults = set(p.evaluate("""() => Array.from(document.querySelectorAll(
        '.kexue-explorable img.kexue-explorable-frame')).map(i => i.src)"""))
    views = p.locator(WIDGET_VIEW).count()
    frames = [u for u in urls if "/_widgets/" in u and u not in defaults]
    problems = []
    if views:
        problems.append(f"{views} ipywidgets view(s): controls that do nothing on the site; "
                        "use kexue_helpers.widgets.explorable")
    return total, frames, problems


# --------------------------------------------------------------------------- tests

def test_fixture_page_markup(fixture_html):
    """What the extension writes (no browser needed): numbered figures named by key, the
    default frame with alt text and its display size, every frame file, and the player only
    on pages with widgets; Thebe from the site."""
    import re

    page = (fixture_html / "widgets_demo.html").read_text(encoding="utf-8")
    for key, number, n_frames in (("demo-wave", 1, 12), ("demo-kinds", 2, 6)):
        fig = re.search(r'<figure class="kexue-explorable-figure[^"]*" id="%s">(.*?)</figure>'
                        % key, page, re.S)
        assert fig, key
        body = fig.group(1)
        assert re.search(r'<span class="caption-number">Fig. %d </span>' % number, body), key
        spec = json.loads(re.search(r'<script type="application/json" '
                                    r'class="kexue-explorable-data">(.*?)</script>',
                                    body, re.S).group(1))
        assert spec["key"] == key and len(spec["frames"]) == n_frames
        img = re.search(r'<img class="kexue-explorable-frame" src="([^"]+)" alt="([^"]+)" '
                        r'width="(\d+)" height="(\d+)"', body)
        assert img and img.group(1) == spec["frames"][spec["default"]]
        assert len(img.group(2).split()) >= 4
        for url in spec["frames"] + [spec["check"]["url"]]:
            assert (fixture_html / url).is_file(), url
    assert "widgets/explorable.js" in page and "Fig. 1" in page
    assert "widgets/explorable.js" not in (fixture_html / "index.html").read_text("utf-8")
    assert 'const THEBE_JS_URL = "_static/vendor/thebe/index.js"' in page
    assert (fixture_html / "_static" / "vendor" / "thebe" / "index.js").is_file()
    assert "unpkg.com" not in page



def test_fixture_widgets_respond(chromium, serve_directory, fixture_html):
    base = serve_directory(fixture_html)
    report = _check_widgets(chromium, base, fixture_html, "widgets_demo.html")
    assert report["widgets"] == 2 and report["moves"] >= 10, report
    print(f"\nfixture: {report['moves']} moves, slowest {report['max_ms']:.1f} ms")


def test_fixture_without_javascript(chromium, serve_directory, fixture_html):
    assert _check_no_js(chromium, serve_directory(fixture_html), "widgets_demo.html") == 2


def test_fixture_first_load(chromium, serve_directory, fixture_html):
    base = serve_directory(fixture_html)
    total, frames, problems = _first_load(chromium, base, "widgets_demo.html")
    assert not problems, "\n".join(problems)
    assert not frames, f"frames fetched before the reader touched a widget: {frames}"
    assert total <= MAX_FIRST_LOAD, f"{total / 1e6:.2f} MB on first load"
    print(f"\nfixture widgets_demo.html: {total / 1e6:.2f} MB on first load")
    # a page without widgets does not load the player; no page loads Font Awesome's
    # 1.5 MB script or its full 156 kB solid font (a 4 kB subset draws the icons)
    context, p, _ = _open(chromium, base, "index.html")
    try:
        _settle(p)
        urls = [r.url.split("?")[0] for r in p.responses]
        assert not any("explorable" in u for u in urls)
        assert not any(u.endswith("fa-solid-900.woff2") for u in urls), urls
        assert any(u.endswith("fa-solid-900-subset.woff") for u in urls), urls
        fa = [r for r in p.responses if r.url.split("?")[0].endswith("scripts/fontawesome.js")]
        assert fa and len(fa[0].body()) < 2000
    finally:
        context.close()


@pytest.mark.parametrize("page", BOOK_WIDGET_PAGES or ["(no page with a widget)"])
def test_book_widgets_without_javascript(chromium, serve_directory, book_html, page):
    if not BOOK_WIDGET_PAGES:
        pytest.skip(f"no page of {SITE} has an explorable widget yet")
    _check_no_js(chromium, serve_directory(book_html), page)


# The book's pages: their widgets and first load are checked in each page's one visit
# (test_site.py: test_book_widgets_respond, test_book_first_load).


# --------------------------------------------------------------------------- Live Code

def _live_code(chromium, base: str, page: str, *, binder_answers: bool) -> dict:
    """Click Live Code with every other host unreachable (optionally with the Binder server's
    health check answered, as when online); report what the page says and requests."""
    context = chromium.new_context(viewport={"width": 1280, "height": 900})
    host = urlsplit(base).netloc
    external: list[str] = []

    def route(r):
        url = r.request.url
        if urlsplit(url).netloc == host:
            return r.continue_()
        external.append(url)
        if binder_answers and url.endswith("/health"):
            return r.fulfill(status=200, body="ok")
        return r.abort()

    context.route("**/*", route)
    p = context.new_page()
    local = []
    p.on("request", lambda r: local.append(r.url) if urlsplit(r.url).netloc == host else None)
    try:
        p.goto(urljoin(base, page), wait_until="load", timeout=NAV_TIMEOUT_MS)
        assert p.locator(".btn-launch-thebe").count() == 1, f"{page}: no Live Code button"
        t0 = time.monotonic()
        p.evaluate("() => document.querySelector('.btn-launch-thebe').click()")
        if binder_answers:
            p.wait_for_function("() => typeof window.thebelab === 'object'", timeout=30_000)
            p.wait_for_timeout(1000)
            message = p.evaluate("() => document.querySelector('.kexue-livecode-message')"
                                 ".textContent")
            failed = False
        else:
            p.locator(".kexue-livecode-failed").wait_for(timeout=15_000)
            message = p.locator(".kexue-livecode-failed").text_content()
            failed = True
        seconds = time.monotonic() - t0
    finally:
        context.close()
    return {"message": message, "failed": failed, "seconds": seconds, "external": external,
            "local": local}


def test_fixture_live_code_offline_says_it_needs_a_connection(chromium, serve_directory,
                                                              fixture_html):
    r = _live_code(chromium, serve_directory(fixture_html), "widgets_demo.html",
                   binder_answers=False)
    assert "needs an internet connection" in r["message"], r["message"]
    assert r["seconds"] < 12, r["seconds"]
    hosts = {urlsplit(u).netloc for u in r["external"]}
    assert hosts <= {"mybinder.org"}, r["external"]  # only the check of the Binder server


def test_fixture_live_code_loads_the_vendored_thebe(chromium, serve_directory, fixture_html):
    r = _live_code(chromium, serve_directory(fixture_html), "widgets_demo.html",
                   binder_answers=True)
    assert any(u.split("?")[0].endswith("/_static/vendor/thebe/index.js") for u in r["local"])
    hosts = {urlsplit(u).netloc for u in r["external"]}
    assert hosts <= {"mybinder.org"}, r["external"]  # no CDN: Thebe, MathJax are local
    assert "Starting a kernel" in r["message"], r["message"]


@pytest.mark.parametrize("page", BOOK_PAGES)
def test_book_page_references_no_cdn(book_html, page):
    """Nothing on the page points at a CDN (sphinx-thebe's default is unpkg.com)."""
    if not (book_html / page).exists():
        unavailable(f"{book_html} has no {page}: rebuild the site")
    html = (book_html / page).read_text(encoding="utf-8")
    for cdn in ("unpkg.com", "cdn.jsdelivr.net", "cdnjs.cloudflare.com"):
        assert cdn not in html, f"{page} refers to {cdn}"
