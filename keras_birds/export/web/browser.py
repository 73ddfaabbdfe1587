"""The exported page in headless Chromium, driven by Playwright: photos in, the page's answers out.

    with PageSession(web_folder) as page:          # served on 127.0.0.1, loaded, model ready
        results = page.classify(["a.jpg", "b.png"])  # window.kb.results of those photos, in order
        page.outside                                 # URLs the page asked for beyond 127.0.0.1 (blocked)

For the tests and tools/bench_web.py. Uses the system's Chromium (Debian's /usr/bin/chromium), never a
browser Playwright would download; `playwright` is imported only here.
"""
from __future__ import annotations

import shutil
import time
from pathlib import Path
from urllib.parse import urlparse

from keras_birds.export.web.serve import HOST, Background

CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
LOCAL_SCHEMES = ("blob", "data")


def find_chromium() -> str | None:
    for name in CHROMIUM_NAMES:
        found = shutil.which(name)
        if found:
            return found
    return None


class PageSession:
    def __init__(self, folder, *, viewport=(1280, 900), mobile: bool = False, scale: float = 1,
                 timeout_s: float = 120, chromium: str | None = None, query: str = ""):
        self.folder, self.query = Path(folder), query
        self._parent = None  # another(): the session whose browser this one shares
        self.viewport, self.mobile, self.scale, self.timeout_ms = viewport, mobile, scale, int(timeout_s * 1000)
        self.chromium = chromium or find_chromium()
        self.outside, self.failed, self.errors = [], [], []
        self.requests, self._ready_at = [], None  # every http(s) URL asked for; how many before the model was ready
        self.runtime = None  # which LiteRT build the page loaded
        self.load_ms = None  # the page's own figure: model.json, model file, runtime, compile, first run
        self.wall_load_s = None  # navigation start to model ready, as measured from here

    def __enter__(self) -> "PageSession":
        from playwright.sync_api import sync_playwright

        if not self.chromium and self._parent is None:
            raise RuntimeError("no Chromium found (apt-get install chromium)")
        self._server = Background(self.folder)
        self.url = self._server.__enter__()
        try:
            if self._parent is None:
                self._pw = sync_playwright().start()
                self._browser = self._pw.chromium.launch(executable_path=self.chromium, args=["--no-sandbox"])
            else:  # Playwright's sync API drives one browser per thread: share it
                self._browser = self._parent._browser
            self._context = context = self._browser.new_context(
                viewport={"width": self.viewport[0], "height": self.viewport[1]}, is_mobile=self.mobile,
                has_touch=self.mobile, device_scale_factor=self.scale)
            context.route("**/*", self._route)
            self.page = context.new_page()
            self.page.on("response", lambda r: r.status >= 400 and self.failed.append((r.url, r.status)))
            self.page.on("pageerror", lambda e: self.errors.append(str(e)))
            started = time.perf_counter()
            self.page.goto(self.url + self.query)
            self.page.wait_for_function("document.body.dataset.ready", timeout=self.timeout_ms)
            self.wall_load_s = time.perf_counter() - started
            state = self.page.evaluate("({ready: kb.ready, error: kb.error, loadMs: kb.loadMs, runtime: kb.runtime})")
            if not state["ready"]:
                raise RuntimeError(f"the page could not load its model: {state['error']}")
            self.load_ms, self.runtime = state["loadMs"], state["runtime"]
            self._ready_at = len(self.requests)
        except BaseException:
            self.__exit__(None, None, None)
            raise
        return self

    @property
    def requests_since_ready(self) -> list:
        return self.requests[self._ready_at:]

    def _route(self, route):
        url = route.request.url
        parsed = urlparse(url)
        if parsed.scheme in ("http", "https"):
            self.requests.append(url)
        if parsed.scheme in LOCAL_SCHEMES or parsed.hostname == HOST:
            route.continue_()
        else:
            self.outside.append(url)
            route.abort()

    def classify(self, paths) -> list:
        """The page's result for each file, given through its file picker at once, in order."""
        paths = [str(p) for p in paths]
        before = self.page.evaluate("kb.results.length")
        self.page.set_input_files("#pick", paths)
        self.page.wait_for_function(
            "([n, k]) => kb.results.length >= n + k && kb.results.slice(n).every(r => r.state !== 'queued')",
            arg=[before, len(paths)], timeout=self.timeout_ms + 20_000 * len(paths))
        return self.page.evaluate("([n, k]) => kb.results.slice(n, n + k)", [before, len(paths)])

    def screenshot(self, path, full_page: bool = False):
        self.page.screenshot(path=str(path), full_page=full_page)

    def another(self, folder, **options) -> "PageSession":
        """A second page (its own server and browser context) in this session's browser."""
        other = PageSession(folder, chromium=self.chromium, **options)
        other._parent = self
        return other

    def __exit__(self, *exc):
        closers = [lambda: self._context.close()]
        if self._parent is None:
            closers += [lambda: self._browser.close(), lambda: self._pw.stop()]
        for close in closers:
            try:
                close()
            except Exception:  # noqa: BLE001 - already closed or never started
                pass
        self._server.__exit__(None, None, None)
