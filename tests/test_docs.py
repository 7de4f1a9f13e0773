"""The documentation builds with warnings as errors, and a real browser renders it.

The module builds the site once, with README's command (``sphinx-build -W ...`` into
``docs/_build/html``, from a fresh environment: ``-E``), then checks what the issue asks of it: a
page for every name in ``fastgmm.__all__``, a gallery entry with a picture for every example,
links into NumPy's, scikit-learn's and Dask's documentation. A broken cross-reference, a
docstring numpydoc cannot parse or an example that fails makes the build, and so this module,
fail.

The browser tests open the built site in headless Chromium (Debian's ``chromium`` and
``chromium-driver``, driven by Selenium), served from a local HTTP server on 127.0.0.1: no
console errors, every image loaded (``naturalWidth > 0``), and full-page screenshots in
``docs/_build/screenshots`` to look at. Without Chromium the tests fail and say what to install;
they never skip.
"""

from __future__ import annotations

import functools
import http.server
import importlib.util
import os
import re
import shutil
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest

import fastgmm

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
HTML = DOCS / "_build" / "html"
SCREENSHOTS = DOCS / "_build" / "screenshots"
EXAMPLES = sorted(p.stem for p in (ROOT / "examples").glob("*.py") if not p.name.startswith("_"))
# README's build command, verbatim; the test runs it with -E (re-read every page, so that every
# warning is emitted again) and --keep-going (report every warning, then fail).
BUILD_COMMAND = "sphinx-build -W -b html docs docs/_build/html"
CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"


@pytest.fixture(scope="module")
def site():
    """Build the documentation once for this module; return the HTML folder."""
    command = [sys.executable, "-m", "sphinx", "-E", "--keep-going", *BUILD_COMMAND.split()[1:]]
    start = time.perf_counter()
    result = subprocess.run(
        command, cwd=ROOT, capture_output=True, text=True, timeout=1800, env=_build_env()
    )
    seconds = time.perf_counter() - start
    assert result.returncode == 0, (
        f"the documentation build failed ({seconds:.0f} s):\n{result.stdout[-5000:]}\n"
        f"{result.stderr[-20000:]}"
    )
    print(f"documentation built in {seconds:.0f} s")
    return HTML


def _build_env():
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    env.setdefault("MPLBACKEND", "Agg")
    env.pop("FASTGMM_EXAMPLE_N", None)  # the gallery sets each example's size itself
    return env


def test_readme_has_the_build_command():
    assert BUILD_COMMAND in (ROOT / "README.md").read_text()


def test_every_public_name_has_a_page(site):
    for name in fastgmm.__all__:
        page = site / "api" / "generated" / f"fastgmm.{name}.html"
        assert page.exists(), f"no API page for fastgmm.{name}"
        assert f'id="fastgmm.{name}"' in page.read_text(), f"{page.name} does not document {name}"


def test_every_example_is_in_the_gallery_with_a_picture(site):
    gallery = (site / "auto_examples" / "index.html").read_text()
    for name in EXAMPLES:
        page = site / "auto_examples" / f"{name}.html"
        assert page.exists(), f"examples/{name}.py has no gallery page"
        assert f"{name}.html" in gallery, f"the gallery index does not link {name}"
        images = re.findall(rf'src="\.\./_images/(sphx_glr_{name}_\d+\.png)"', page.read_text())
        assert images, f"the gallery page of {name} shows no picture"
        for image in images:
            data = (site / "_images" / image).read_bytes()
            assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 10_000, image


def test_links_into_numpy_sklearn_and_dask(site):
    api = "".join(page.read_text() for page in (site / "api" / "generated").glob("*.html"))
    assert "https://numpy.org/doc/stable/reference/generated/numpy.ndarray.html" in api
    assert "https://scikit-learn.org/stable/" in api
    assert "https://docs.python.org/3/" in api
    sklearn = (site / "guide" / "from_sklearn.html").read_text()
    assert "https://scikit-learn.org/stable/modules/generated/sklearn.mixture" in sklearn
    guide = (site / "guide" / "large_data.html").read_text()
    assert "https://docs.dask.org/en/stable/" in guide
    assert "https://distributed.dask.org/en/stable/" in guide


def test_numpy_inventory_is_what_its_script_writes():
    path = DOCS / "_intersphinx" / "make_numpy_inventory.py"
    spec = importlib.util.spec_from_file_location("make_numpy_inventory", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert module.TARGET.read_bytes() == module.inventory_bytes(), (
        "docs/_intersphinx/numpy.inv is stale: run python docs/_intersphinx/make_numpy_inventory.py"
    )


def test_broken_references_fail_the_build(tmp_path):
    """The reference policy on a two-line project: a fastgmm internal that exists but has no
    page is shown as code; a name that does not exist fails a -W build."""
    conf = textwrap.dedent(
        f"""
        import sys
        sys.path[:0] = [{str(DOCS / "_ext")!r}, {str(ROOT)!r}]
        extensions = ["sphinx.ext.autodoc", "fastgmm_docs"]
        nitpicky = True
        """
    )
    (tmp_path / "conf.py").write_text(conf)
    results = {}
    for name, target in (("internal", "fastgmm.init.kmeans"), ("missing", "fastgmm.no_such")):
        (tmp_path / "index.rst").write_text(f"Title\n=====\n\nSee :func:`{target}`.\n")
        results[name] = subprocess.run(
            [
                sys.executable,
                "-m",
                "sphinx",
                "-W",
                "-E",
                "-q",
                "-b",
                "html",
                str(tmp_path),
                str(tmp_path / name),
            ],
            capture_output=True,
            text=True,
            timeout=300,
            env=_build_env(),
        )
    assert results["internal"].returncode == 0, results["internal"].stderr
    assert results["missing"].returncode != 0
    assert "fastgmm.no_such" in results["missing"].stderr


# ---------------------------------------------------------------------------- the browser
class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format, *args):  # keep pytest's output for failures
        pass


@pytest.fixture(scope="module")
def server(site):
    """The built site on http://127.0.0.1:<free port>/, for the module's tests."""
    handler = functools.partial(_QuietHandler, directory=str(site))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    """Headless Chromium through Selenium and Debian's chromedriver; fails, never skips."""
    missing = [path for path in (CHROMIUM, CHROMEDRIVER) if not Path(path).exists()]
    if missing:
        pytest.fail(
            f"{' and '.join(missing)} not found: the browser tests need Debian's Chromium "
            "(apt-get install chromium chromium-driver; .ci/run installs them)"
        )
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
    except ImportError:
        pytest.fail("selenium is not installed: pip install -e '.[test]'")

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    # The flags that work on the CI machines (no GPU, no network, root): without the
    # background-networking ones Chromium keeps trying to reach Google's hosts.
    for flag in (
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        f"--user-data-dir={tmp_path_factory.mktemp('chromium-profile')}",
        "--window-size=1280,900",
    ):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    # An explicit driver path: Selenium Manager, which would try to download one, never runs.
    driver = webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(60)
    yield driver
    driver.quit()


def _open(browser, url):
    """Load ``url``, wait for every image, and return the console's error messages."""
    from selenium.webdriver.support.ui import WebDriverWait

    browser.get_log("browser")  # drop what earlier pages logged
    browser.get(url)
    # Lazy images load only when scrolled to: make them load now, then wait for all of them.
    browser.execute_script(
        "document.querySelectorAll('img[loading=lazy]').forEach(i => i.loading = 'eager');"
    )
    WebDriverWait(browser, 30).until(
        lambda d: d.execute_script(
            "return document.readyState === 'complete' && "
            "Array.from(document.images).every(i => i.complete);"
        )
    )
    return [entry["message"] for entry in browser.get_log("browser") if entry["level"] == "SEVERE"]


def _images(browser):
    return browser.execute_script(
        "return Array.from(document.images).map(i => [i.getAttribute('src'), i.naturalWidth]);"
    )


def _screenshot(browser, name):
    """A full-page PNG in SCREENSHOTS (the window grows to the page's height, up to 12,000 px)."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    height = browser.execute_script("return document.documentElement.scrollHeight;")
    browser.set_window_size(1280, min(max(height, 900), 12_000))
    path = SCREENSHOTS / f"{name}.png"
    browser.save_screenshot(str(path))
    browser.set_window_size(1280, 900)
    assert path.stat().st_size > 10_000, f"{path} looks empty"
    return path


PAGES = {
    "index": "index.html",
    "gallery": "auto_examples/index.html",
    "GaussianMixture": "api/generated/fastgmm.GaussianMixture.html",
}


@pytest.mark.parametrize("name", PAGES)
def test_page_renders_in_chromium(browser, server, name):
    errors = _open(browser, f"{server}/{PAGES[name]}")
    assert not errors, f"console errors on {PAGES[name]}: {errors}"
    assert "fastgmm" in browser.title
    broken = [src for src, width in _images(browser) if width == 0]
    assert not broken, f"images that did not load on {PAGES[name]}: {broken}"
    _screenshot(browser, name)


def test_gallery_thumbnails_and_example_pictures_load(browser, server):
    errors = _open(browser, f"{server}/auto_examples/index.html")
    thumbnails = [(src, w) for src, w in _images(browser) if "sphx_glr_" in (src or "")]
    assert len(thumbnails) >= len(EXAMPLES), thumbnails
    assert all(width > 0 for _, width in thumbnails), thumbnails
    assert not errors, errors
    for example in EXAMPLES:
        errors = _open(browser, f"{server}/auto_examples/{example}.html")
        assert not errors, f"console errors on {example}.html: {errors}"
        pictures = [(src, w) for src, w in _images(browser) if f"sphx_glr_{example}_" in src]
        assert pictures and all(width > 0 for _, width in pictures), (example, pictures)
        _screenshot(browser, f"example_{example}")


def test_screenshots_folder_is_ignored_by_git():
    if shutil.which("git") is None or not (ROOT / ".git").exists():
        pytest.fail("git and the repository are needed to check .gitignore")
    result = subprocess.run(
        ["git", "check-ignore", "-q", str(SCREENSHOTS / "index.png")], cwd=ROOT, check=False
    )
    assert result.returncode == 0, "docs/_build/screenshots must be ignored by git"
