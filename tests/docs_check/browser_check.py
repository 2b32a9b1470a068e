"""Open every page of the built site in headless Chromium and check what a reader would see.

Run after the docs build (``nox -s docs`` does)::

    python tests/docs_check/browser_check.py build/html --screenshots build/screenshots

The site is served from a local HTTP server on 127.0.0.1; the browser resolves no other host.
It fails (exit status 1, one line per problem) when

- a page is missing: every docs source, generated page and gallery script must have its HTML page;
- a page logs a console error (a JavaScript exception, a resource that failed to load), including
  a resource requested from another host: the site must work offline (MathJax is served from
  ``_static`` by sphinx-mathjax-offline);
- an internal link (page, ``#anchor``, download of a script, notebook or zip) does not resolve;
- an image does not load (``naturalWidth`` 0), or the server answered 404 to any request.

It saves screenshots of the landing page and of a gallery page (its graph picture in view).
Chromium and chromedriver are Debian's (``apt-get install chromium chromium-driver``), driven by
selenium from PyPI; no browser is downloaded.
"""

from __future__ import annotations

import argparse
import functools
import http.server
import json
import os
import re
import shutil
import sys
import tempfile
import threading
import time
from pathlib import Path
from urllib.parse import unquote, urldefrag, urlparse

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--no-first-run",
    "--disable-component-update",
    "--disable-sync",
    "--disable-quic",
    "--disable-dev-shm-usage",
    "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1",
    "--window-size=1280,900",
]
SKIPPED_DIRS = {"_static", "_sources", "_downloads", "_images"}
#: Wait for every <img> to finish loading (or failing), then report each one.
IMAGES_SCRIPT = """
const done = arguments[arguments.length - 1];
const images = Array.from(document.images);
images.forEach(img => { img.loading = 'eager'; });
Promise.all(images.map(img => img.complete ? null : new Promise(resolve => {
  img.addEventListener('load', resolve); img.addEventListener('error', resolve);
  setTimeout(resolve, 10000);
}))).then(() => done(images.map(img => [img.currentSrc || img.src, img.complete, img.naturalWidth])));
"""


#: Scroll the first image after the element with the given id to the middle of the window.
FOCUS_SCRIPT = """
const anchor = document.getElementById(arguments[0]);
if (!anchor) return false;
const image = Array.from(document.images).find(
  img => anchor.compareDocumentPosition(img) & Node.DOCUMENT_POSITION_FOLLOWING);
if (!image) return false;
image.scrollIntoView({block: 'center', behavior: 'instant'});
return true;
"""


class _Handler(http.server.SimpleHTTPRequestHandler):
    not_found: list[str] = []

    def log_message(self, format, *args):  # noqa: A002 - the base class's name
        pass

    def send_error(self, code, message=None, explain=None):
        if code == 404:
            self.not_found.append(self.path)
        super().send_error(code, message, explain)


def serve(directory: Path):
    """A threaded HTTP server for ``directory`` on 127.0.0.1 and a free port."""
    handler = functools.partial(_Handler, directory=str(directory))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def expected_pages(html: Path) -> set[str]:
    """The HTML pages the sources promise, relative to ``html``."""
    docs, gallery = ROOT / "docs", ROOT / "gallery"
    pages = {"index.html", "search.html", "genindex.html", "auto_gallery/index.html"}
    for source in docs.rglob("*.rst"):
        relative = source.relative_to(docs)
        if relative.parts[0] in {"auto_gallery", "_templates"} or relative.name == "sg_execution_times.rst":
            continue
        pages.add(str(relative.with_suffix(".html")))
    pages.update(f"auto_gallery/{script.stem}.html" for script in gallery.glob("plot_*.py"))
    return pages


def current_pages(html: Path) -> set[str]:
    """The pages of this build: Sphinx's search index lists its documents (stale files are not)."""
    index = html / "searchindex.js"
    if not index.exists():
        return {"index.html"}
    match = re.search(r'"docnames":\s*(\[[^\]]*\])', index.read_text())
    docnames = json.loads(match.group(1)) if match else []
    return {f"{name}.html" for name in docnames} | {"search.html", "genindex.html"}


def browser(user_data_dir: str):
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
    except ImportError:
        sys.exit("browser check: selenium is not installed (it is in the docs dependency group)")
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    driver = shutil.which("chromedriver") or (
        "/usr/bin/chromedriver" if Path("/usr/bin/chromedriver").exists() else None
    )
    if not chromium or not driver:
        sys.exit(
            "browser check: chromium and chromedriver are needed: apt-get install -y chromium chromium-driver (as root)"
        )
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for flag in CHROMIUM_FLAGS + [f"--user-data-dir={user_data_dir}"]:
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    os.environ.setdefault("SE_OFFLINE", "true")  # selenium manager must not fetch anything
    return webdriver.Chrome(options=options, service=Service(executable_path=driver))


def _local_path(html: Path, url: str, base: str) -> Path | None:
    """The file a same-site URL points at, or None for an external URL."""
    if not url.startswith(base):
        return None
    path = unquote(urlparse(url).path).lstrip("/")
    target = html / path
    return target / "index.html" if target.is_dir() else target


#: On a page with filterable tables: typing in the filter box hides the rows that do not match, and a
#: click on the first header sorts the rows by it.  Returns what went wrong.
FILTER_SCRIPT = """
const problems = [];
for (const table of document.querySelectorAll('table.autograd-spec-filterable')) {
  const box = table.previousElementSibling;
  const rows = Array.from(table.tBodies[0].rows);
  if (!box || box.tagName !== 'INPUT') { problems.push('a filterable table has no filter box'); continue; }
  if (rows.length < 2) continue;
  const needle = rows[1].cells[0].textContent.trim().toLowerCase();
  box.value = needle;
  box.dispatchEvent(new Event('input'));
  const shown = rows.filter(r => r.style.display !== 'none');
  if (!shown.length || shown.some(r => r.textContent.toLowerCase().indexOf(needle) === -1)) {
    problems.push('the filter box does not filter the rows');
  }
  box.value = '';
  box.dispatchEvent(new Event('input'));
  table.tHead.rows[0].cells[0].click();
  const keys = Array.from(table.tBodies[0].rows).map(r => r.cells[0].textContent.trim());
  const sorted = keys.slice().sort((a, b) => a.localeCompare(b, undefined, {numeric: true}));
  if (keys.join('|') !== sorted.join('|')) problems.push('a click on the header does not sort the rows');
}
return problems;
"""


def check(
    html: Path,
    screenshots: Path | None,
    gallery_page: str = "auto_gallery/plot_10_leaves.html",
    focus: str = "leaves-next-functions",
) -> list[str]:
    html = html.resolve()
    problems: list[str] = []
    built = current_pages(html)
    stale = sorted(
        str(p.relative_to(html)) for p in html.rglob("*.html") if not SKIPPED_DIRS & set(p.relative_to(html).parts)
    )
    pages = sorted(page for page in stale if page in built)
    stale = [page for page in stale if page not in built]
    if stale:
        print("left over from older builds, not checked:", ", ".join(stale))
    for missing in sorted(built - set(pages)):
        problems.append(f"missing page: {missing} (in the search index, but no HTML file)")
    for missing in sorted(expected_pages(html) - set(pages)):
        problems.append(f"missing page: {missing}")
    server = serve(html)
    base = f"http://127.0.0.1:{server.server_address[1]}/"
    ids: dict[str, set[str]] = {}
    links: list[tuple[str, str]] = []
    images_checked = 0
    with tempfile.TemporaryDirectory(prefix="chromium-profile-") as profile:
        driver = browser(profile)
        driver.set_page_load_timeout(60)
        driver.set_script_timeout(30)
        try:
            for page in pages:
                driver.get(base + page)
                for entry in driver.get_log("browser"):
                    if entry["level"] != "SEVERE":
                        continue
                    message = entry["message"]
                    if "http" in message and base not in message.split(" ")[0]:
                        problems.append(f"{page}: requests a resource from another host: {message.split(' ')[0]}")
                    else:
                        problems.append(f"{page}: console error: {message}")
                ids[page] = set(
                    driver.execute_script(
                        "return Array.from(document.querySelectorAll('[id],a[name]')).map(e => e.id || e.name)"
                    )
                )
                for href in driver.execute_script(
                    "return Array.from(document.querySelectorAll('a[href]')).map(a => a.href)"
                ):
                    links.append((page, href))
                for src, complete, width in driver.execute_async_script(IMAGES_SCRIPT):
                    images_checked += 1
                    if not complete or not width:
                        problems.append(f"{page}: image does not load: {src}")
            for page in pages:
                if "generated/" in page:
                    driver.get(base + page)
                    problems += [f"{page}: {p}" for p in driver.execute_script(FILTER_SCRIPT)]
            if screenshots is not None:
                screenshots.mkdir(parents=True, exist_ok=True)
                driver.get(base + "generated/edges.html")
                driver.save_screenshot(str(screenshots / "edges.png"))
                driver.get(base + "index.html")
                driver.save_screenshot(str(screenshots / "index.png"))
                driver.get(base + gallery_page)
                driver.save_screenshot(str(screenshots / f"{Path(gallery_page).stem}.png"))
                driver.get(f"{base}{gallery_page}")
                driver.execute_async_script(IMAGES_SCRIPT)  # lazy images get their height first
                found = driver.execute_script(FOCUS_SCRIPT, focus)
                if not found:
                    problems.append(f"{gallery_page}: no image after #{focus} for the screenshot")
                time.sleep(0.5)
                driver.save_screenshot(str(screenshots / f"{Path(gallery_page).stem}-graph.png"))
        finally:
            driver.quit()
            server.shutdown()
    checked = set()
    for page, href in links:
        url, fragment = urldefrag(href)
        target = _local_path(html, url, base)
        if target is None or (page, href) in checked:
            continue
        checked.add((page, href))
        if not target.exists():
            problems.append(f"{page}: broken link: {href} ({target.relative_to(html)} does not exist)")
        elif fragment and target.suffix == ".html":
            relative = str(target.relative_to(html))
            if relative in ids and unquote(fragment) not in ids[relative]:
                problems.append(f"{page}: broken anchor: {href}")
    for path in sorted(set(_Handler.not_found)):
        problems.append(f"server answered 404 for {path}")
    print(f"browser check: {len(pages)} pages, {len(checked)} internal links, {images_checked} images checked")
    return problems


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("html", type=Path, help="the built site, e.g. build/html")
    parser.add_argument("--screenshots", type=Path, help="where to save screenshots")
    args = parser.parse_args(argv)
    if not (args.html / "index.html").exists():
        print(f"browser check: {args.html / 'index.html'} does not exist: build the docs first")
        return 1
    problems = check(args.html, args.screenshots)
    for problem in problems:
        print("FAIL", problem)
    if args.screenshots:
        print("screenshots:", ", ".join(str(p) for p in sorted(args.screenshots.glob("*.png"))))
    print("browser check:", "FAILED" if problems else "passed", f"({len(problems)} problems)")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
