"""Shared fixtures of the browser tests: serve any folder on 127.0.0.1, one headless Chromium.

``tests/browser/test_site.py`` keeps its own ``site`` and ``browser`` fixtures (for the book's
``_build/html``); these are for tests that serve other folders too (``test_widgets.py``
serves a fixture book built from ``tests/fixtures/``). Same policy: without Playwright or
Chromium the tests skip, or fail with ``KEXUE_BROWSER_REQUIRED=1``.
"""

from __future__ import annotations

import contextlib
import functools
import http.server
import os
import shutil
import threading
from pathlib import Path
from typing import Iterator

import pytest

REQUIRED = os.environ.get("KEXUE_BROWSER_REQUIRED") == "1"
# Set by .ci/run around the README's test command: the browser tests are skipped there and
# run once, in .ci/run's browser phases (the fixture books' during the build), not twice.
LATER = os.environ.get("KEXUE_BROWSER_LATER") == "1"
SERVER_LIFETIME_S = 1800
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--disable-dev-shm-usage"]


def unavailable(reason: str):
    """Skip the test, or fail it under ``KEXUE_BROWSER_REQUIRED=1``."""
    if REQUIRED:
        pytest.fail(f"{reason} (KEXUE_BROWSER_REQUIRED=1, so this fails instead of skipping)")
    pytest.skip(reason)


def keep_local(context, base: str) -> list[str]:
    """Abort every request of ``context`` that leaves ``base``'s host; return the list that
    records them (a test fails on any entry: the site must be self-contained)."""
    from urllib.parse import urlsplit

    host = urlsplit(base).netloc
    problems: list[str] = []

    def route(r):
        if urlsplit(r.request.url).netloc != host:
            problems.append(f"request leaves localhost: {r.request.url}")
            r.abort()
        else:
            r.continue_()

    context.route("**/*", route)
    return problems


def chromium_executable() -> str | None:
    env = os.environ.get("KEXUE_CHROMIUM")
    if env:
        return env if Path(env).exists() else None
    if Path("/usr/bin/chromium").exists():
        return "/usr/bin/chromium"
    for name in ("chromium", "chromium-browser", "google-chrome"):
        if shutil.which(name):
            return shutil.which(name)
    return None


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


class QuietServer(http.server.ThreadingHTTPServer):
    """The tests' HTTP server: a browser that closes a page (its context) while a response
    is still being sent breaks the connection; that is not an error of the site."""

    daemon_threads = True

    def handle_error(self, request, client_address):
        import sys

        if isinstance(sys.exc_info()[1], ConnectionError):
            return
        super().handle_error(request, client_address)


@contextlib.contextmanager
def serving(directory: Path) -> Iterator[str]:
    """Serve ``directory`` on 127.0.0.1 (an ephemeral port, plain HTTP/1.1 without
    compression, like ``python -m http.server``) from a daemon thread, until the block ends
    or ``SERVER_LIFETIME_S`` passes; yield the base URL."""
    handler = functools.partial(_QuietHandler, directory=str(directory))
    server = QuietServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, name="test-server", daemon=True)
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


@pytest.fixture(scope="session")
def serve_directory():
    """``serve_directory(path) -> base URL``: :func:`serving` ``path`` until the session
    ends."""
    with contextlib.ExitStack() as stack:
        yield lambda directory: stack.enter_context(serving(directory))


@pytest.fixture(scope="session")
def chromium():
    """One headless Chromium (Playwright) per test process, shared by ``test_site.py`` and
    ``test_widgets.py`` (Playwright's sync API cannot run two instances at once; a page's
    tests from both modules run in one process, and a module-scoped browser would be
    relaunched at every switch between them)."""
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        unavailable("the Python package playwright is not installed (pip install playwright)")
    exe = chromium_executable()
    if exe is None:
        unavailable("no Chromium found (apt-get install chromium, or set KEXUE_CHROMIUM)")
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=exe, headless=True, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


def _xdist_group(item) -> str | None:
    """The group a browser test runs in under ``pytest -n N --dist loadgroup``: every test of
    one page together (the page's measurements are cached per process and shared by its
    checks), the tests of each fixture site together (the fixture is built once, in one
    place), anything else anywhere."""
    names = getattr(item, "fixturenames", ())
    if "fixture_site" in names:
        return "fixture-site"
    if "fixture_html" in names:
        return "fixture-widgets"
    params = getattr(getattr(item, "callspec", None), "params", {})
    page = params.get("page") or params.get("doc")
    if isinstance(page, str):
        return page.removesuffix(".html")
    return None


@pytest.hookimpl(tryfirst=True)  # before xdist's own hook reads the marks into node ids
def pytest_collection_modifyitems(config, items):
    """Tag the browser tests with their ``xdist_group`` (see :func:`_xdist_group`), so that
    ``.ci/run`` can spread them over several processes, one page per process at a time;
    and the tests of the fixture books (which need no built site) with ``fixture_book``,
    so that ``.ci/run`` can run them while the book is being built."""
    here = Path(__file__).resolve().parent
    for item in items:
        if here not in Path(str(item.path)).resolve().parents:
            continue
        group = _xdist_group(item)
        if group is not None:
            item.add_marker(pytest.mark.xdist_group(group))
        if group in ("fixture-site", "fixture-widgets"):
            item.add_marker(pytest.mark.fixture_book)
        if LATER and not REQUIRED:
            item.add_marker(pytest.mark.skip(
                reason="KEXUE_BROWSER_LATER=1: .ci/run runs the browser tests after the build"))
