"""The report and the notebooks in a real browser: Debian's Chromium driven by Playwright.

- The report opens from ``file://`` with every network request blocked; the test fails on
  any request besides the page itself, any console error, horizontal overflow at 1280 px,
  a truncated table cell, a missing section, an image without real alternative text, or
  ``inf``/``NaN``/snake_case in the visible text.
- It prints the report to A4 PDF and checks the page count and that every table's every
  column header, and every cell, is in the PDF's text.
- It opens JupyterLab on loopback, runs notebook 00 through the menu's *Run All Cells*, and
  checks that no cell ended in an error.

Chromium is used through ``executable_path`` (Playwright's own browser download does not
work offline). Without Chromium or Playwright the tests are skipped with a message saying
how to enable them: ``bash .ci/browser.sh`` installs both and runs this file.
Set ``FDKIT_SCREENSHOTS=DIR`` to keep screenshots of what the browser showed.
"""

from __future__ import annotations

import os
import re
import secrets
import shutil
import subprocess
import sys
import time
import unicodedata
from collections import Counter
from pathlib import Path

import pytest

from fdkit import report
from fdkit.report_html import SECTIONS

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = os.environ.get("FDKIT_CHROMIUM", "/usr/bin/chromium")
LAUNCH_ARGS = list(report.HEADLESS_FLAGS)
ENABLE = "run `bash .ci/browser.sh` (installs Debian's chromium and Playwright, then runs this file)"

try:
    from playwright.sync_api import sync_playwright
except ImportError:  # pragma: no cover - depends on the machine
    sync_playwright = None

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(sync_playwright is None, reason=f"Playwright is not installed; {ENABLE}"),
    pytest.mark.skipif(not Path(CHROMIUM).is_file(), reason=f"no Chromium at {CHROMIUM}; {ENABLE}"),
]

SNAKE_CASE = re.compile(r"\b[a-z]+_[a-z0-9_]+\b")
NOT_A_NUMBER = re.compile(r"(?<![\w-])(-?inf|nan|NaN|Infinity)(?![\w-])")
WIDTH = 1280
A4_CONTENT_PX = 690  # 210 mm less the print stylesheet's 2 x 14 mm margins, at 96 px per inch


def _shots(name: str) -> Path | None:
    folder = os.environ.get("FDKIT_SCREENSHOTS")
    if not folder:
        return None
    Path(folder).mkdir(parents=True, exist_ok=True)
    return Path(folder) / name


@pytest.fixture(scope="module")
def browser():
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=LAUNCH_ARGS, headless=True)
        yield launched
        launched.close()


@pytest.fixture(scope="module")
def report_file(tmp_path_factory):
    out = tmp_path_factory.mktemp("report") / "report.html"
    return report.render_report(
        report.ReportSettings(
            records=ROOT / "synthetic",
            allocation=ROOT / "synthetic" / "allocation.csv",
            funnel=ROOT / "synthetic" / "funnel.csv",
            unit="Test unit",
            report_date="2024-03-01",
            registration="not registered (test)",
        ),
        out,
    )


def _open_offline(browser, url: str, *, width: int = WIDTH):
    """A page with every request except ``url`` itself recorded and aborted, and its console watched."""
    context = browser.new_context(viewport={"width": width, "height": 900}, offline=True)
    errors = []
    requests = _block_all_but(context, lambda address: address == url)
    page = context.new_page()
    page.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.goto(url, wait_until="load")
    return context, page, requests, errors


def test_report_in_a_browser_is_self_contained_complete_and_fits(browser, report_file):
    url = report_file.resolve().as_uri()
    context, page, requests, errors = _open_offline(browser, url)
    try:
        if shot := _shots("report-1280.png"):
            page.screenshot(path=str(shot), full_page=True)
        assert requests == [], f"the report asked for {requests}"
        assert errors == [], f"console errors: {errors}"
        assert page.evaluate("document.scripts.length") == 0

        widths = page.evaluate("[document.documentElement.scrollWidth, window.innerWidth]")
        assert widths[0] <= widths[1] == WIDTH, f"page is {widths[0]} px wide in a {widths[1]} px window"

        for section in SECTIONS:
            assert page.locator(f"section#{section} > h2").count() == 1, f"section {section!r} is missing"

        truncated = page.evaluate(
            """() => [...document.querySelectorAll('th, td, caption, figcaption')]
                .filter(el => el.scrollWidth > el.clientWidth + 1 || getComputedStyle(el).textOverflow === 'ellipsis')
                .map(el => el.textContent.slice(0, 60))"""
        )
        assert truncated == [], f"truncated cells: {truncated}"
        overflowing = page.evaluate(
            """() => [...document.querySelectorAll('table')]
                .filter(t => t.getBoundingClientRect().right > document.documentElement.clientWidth)
                .map(t => t.caption ? t.caption.textContent.slice(0, 60) : '?')"""
        )
        assert overflowing == [], f"tables wider than the window: {overflowing}"

        images = page.evaluate(
            "[...document.images].map(i => [i.alt, i.naturalWidth, i.getBoundingClientRect().width])"
        )
        assert len(images) >= 2
        for alt, natural, shown in images:
            assert natural > 0 and shown > 0, "an image did not load"
            assert len(alt) > 60 and "No description" not in alt, f"poor alt text: {alt!r}"

        text = page.inner_text("body")
        assert not NOT_A_NUMBER.findall(text), NOT_A_NUMBER.findall(text)
        assert not SNAKE_CASE.findall(text), SNAKE_CASE.findall(text)
        assert "¶" not in text
        summary = page.inner_text("section#summary")
        assert "The primary outcome, fixed in the analysis plan" in summary and "was crime harm as a suspect" in summary
        assert re.search(r"p (=|<) 0\.\d{3}", summary)
    finally:
        context.close()


def _pdf_text(path: Path) -> tuple[int, list[str], list[tuple[float, float]]]:
    from pypdf import PdfReader

    reader = PdfReader(str(path))
    # NFKC turns the PDF's ligature glyphs (ﬁ, ﬀ, ﬃ) back into letters.
    pages = [unicodedata.normalize("NFKC", page.extract_text() or "") for page in reader.pages]
    sizes = [(float(page.mediabox.width), float(page.mediabox.height)) for page in reader.pages]
    return len(reader.pages), pages, sizes


def _words(text: str) -> Counter:
    """Words and numbers, ignoring spacing, line breaks and hyphens (the PDF's text wraps differently)."""
    return Counter(re.findall(r"[A-Za-z]+|\d[\d,.]*", text))


def test_report_prints_to_a4_with_every_column(browser, report_file, tmp_path):
    url = report_file.resolve().as_uri()
    context, page, requests, errors = _open_offline(browser, url, width=A4_CONTENT_PX)
    try:
        page.emulate_media(media="print")
        # At the width of an A4 page's printable area, no table may be wider than the page.
        overflowing = page.evaluate(
            """() => [...document.querySelectorAll('table')]
                .filter(t => t.scrollWidth > t.parentElement.clientWidth + 1
                             || t.getBoundingClientRect().right > document.documentElement.clientWidth + 1)
                .map(t => t.caption ? t.caption.textContent.slice(0, 60) : '?')"""
        )
        headers = page.evaluate("[...document.querySelectorAll('thead th')].map(th => th.innerText)")
        cells = page.evaluate("[...document.querySelectorAll('tbody th, tbody td')].map(td => td.innerText)")
        pdf = tmp_path / "report.pdf"
        page.pdf(path=str(pdf), prefer_css_page_size=True, print_background=True)
    finally:
        context.close()
    assert requests == [] and errors == []
    assert overflowing == [], f"tables wider than an A4 page: {overflowing}"
    count, pages, sizes = _pdf_text(pdf)
    assert 5 <= count <= 18, f"{count} pages"  # 16 since the CONSORT 2025 sections, plan and checklist
    for width, height in sizes:
        assert abs(width - 595.3) < 2 and abs(height - 841.9) < 2, f"page is {width} x {height} pt, not A4"
    printed = _words(" ".join(pages))
    shown = _words(" ".join(headers + cells))
    missing = shown - printed
    assert not missing, f"words of table headers or cells missing from the PDF: {dict(missing)}"
    for header in set(headers):  # every column's header, on at least one page
        assert _words(header) <= printed, header
    if shot := _shots("report.pdf"):
        shutil.copy(pdf, shot)


def test_the_command_prints_a_pdf_with_chromium(tmp_path):
    out = tmp_path / "report.html"
    command = [
        sys.executable,
        "-m",
        "fdkit.cli",
        "report",
        "--records",
        str(ROOT / "synthetic"),
        "--allocation",
        str(ROOT / "synthetic" / "allocation.csv"),
        "--funnel",
        str(ROOT / "synthetic" / "funnel.csv"),
        "--out",
        str(out),
        "--pdf",
    ]
    env = dict(os.environ, PATH=f"{Path(CHROMIUM).parent}{os.pathsep}{os.environ.get('PATH', '')}")
    done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 0, done.stderr
    assert done.stderr == "", done.stderr  # no kernel warnings, nothing alarming
    count, _, _ = _pdf_text(out.with_suffix(".pdf"))
    assert count >= 5


# ---------------------------------------------------------------- JupyterLab, Run All


def _start_lab(tmp: Path, root: Path):
    from test_jupyter_server import Server, _free_port, _wait_until_ready

    port, token = _free_port(), secrets.token_hex(24)
    env = dict(os.environ)
    for name in ("JUPYTER_TOKEN", "JUPYTER_PORT", "JUPYTER_CONFIG_PATH"):
        env.pop(name, None)
    env.update(
        JUPYTER_DATA_DIR=str(tmp / "user-data"),
        JUPYTER_CONFIG_DIR=str(tmp / "config"),
        JUPYTER_RUNTIME_DIR=str(tmp / "runtime"),
        IPYTHONDIR=str(tmp / "ipython"),
        JUPYTERLAB_SETTINGS_DIR=str(tmp / "lab-settings"),
        JUPYTERLAB_WORKSPACES_DIR=str(tmp / "lab-workspaces"),
    )
    command = [
        sys.executable,
        "-m",
        "jupyterlab",
        "--no-browser",
        "--ServerApp.ip=127.0.0.1",
        f"--ServerApp.port={port}",
        "--ServerApp.port_retries=0",
        f"--ServerApp.root_dir={root}",
        f"--IdentityProvider.token={token}",
        "--LabApp.news_url=",
        "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
    ]
    if os.geteuid() == 0:
        command.append("--allow-root")
    log = tmp / "lab.log"
    with open(log, "wb") as handle:
        process = subprocess.Popen(
            command, cwd=root, env=env, stdin=subprocess.DEVNULL, stdout=handle, stderr=subprocess.STDOUT
        )
    server = Server(f"http://127.0.0.1:{port}", token, root, process, log)
    if not _wait_until_ready(server, time.monotonic() + 90):
        pytest.fail(f"JupyterLab exited early:\n{server.stderr()}")
    return server


def test_notebook_00_runs_all_in_jupyterlab(browser, tmp_path):
    import nbformat
    from test_jupyter_server import _stop

    root = tmp_path / "kit"
    (root / "notebooks").mkdir(parents=True)
    shutil.copytree(ROOT / "synthetic", root / "synthetic")
    # Outputs and execution counts cleared, so every prompt and output seen afterwards is this run's.
    document = nbformat.read(ROOT / "notebooks" / "00_start_here.ipynb", as_version=4)
    for cell in document.cells:
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
    nbformat.write(document, root / "notebooks" / "00_start_here.ipynb")
    code_cells = [cell for cell in document.cells if cell.cell_type == "code"]
    # Collapsed solution cells show no input prompt; every other cell shows [n]: in order.
    hidden = [cell.metadata.get("jupyter", {}).get("source_hidden", False) for cell in code_cells]
    wanted = ["" if hide else f"[{n}]:" for n, hide in enumerate(hidden, start=1)]
    server = _start_lab(tmp_path, root)
    context = browser.new_context(viewport={"width": WIDTH, "height": 900})
    outside = _block_all_but(context, lambda address: address.startswith(server.url))
    page = context.new_page()
    prompts: list[str] = []
    try:
        page.goto(f"{server.url}/lab/tree/notebooks/00_start_here.ipynb?token={server.token}")
        page.wait_for_selector(".jp-Notebook .jp-CodeCell", timeout=90_000)
        # JupyterLab may ask which kernel to start; take the default it offers.
        select = page.locator(".jp-Dialog .jp-mod-accept")
        try:
            select.wait_for(timeout=15_000)
            select.click()
        except Exception:  # no dialog: the kernel started by itself
            pass
        page.wait_for_selector(".jp-Notebook-ExecutionIndicator[data-status='idle']", timeout=120_000)
        page.get_by_role("menuitem", name="Run", exact=True).click()
        page.get_by_role("menuitem", name=re.compile(r"^Run All Cells")).click()
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            prompts = page.eval_on_selector_all(
                ".jp-Notebook .jp-CodeCell .jp-InputPrompt", "els => els.map(e => e.textContent.trim())"
            )
            if prompts == wanted:
                break
            time.sleep(1)
        else:
            pytest.fail(f"Run All did not finish in 300 s; prompts: {prompts}")
        if shot := _shots("lab-00.png"):
            page.screenshot(path=str(shot))
        # The last cells may be collapsed solutions: wait for the kernel to finish them too.
        page.wait_for_selector(".jp-Notebook-ExecutionIndicator[data-status='idle']", timeout=120_000)
        errors = page.eval_on_selector_all(
            ".jp-OutputArea-output[data-mime-type='application/vnd.jupyter.stderr']",
            "els => els.map(e => e.textContent.slice(0, 300))",
        )
        tracebacks = [text for text in errors if "Traceback" in text or "Error" in text]
        assert tracebacks == [], f"error outputs: {tracebacks}"
        outputs = page.locator(".jp-Notebook .jp-CodeCell .jp-OutputArea-output").count()
        assert outputs > 0, "Run All produced no output at all"
        assert outside == [], f"JupyterLab asked for {outside}"
    finally:
        context.close()
        _stop(server)


def _block_all_but(context, allowed) -> list[str]:
    """Abort every request of ``context`` whose URL ``allowed`` refuses; the list fills with them."""
    blocked: list[str] = []

    def route(request_route):
        if allowed(request_route.request.url):
            request_route.continue_()
        else:
            blocked.append(request_route.request.url)
            request_route.abort()

    context.route("**/*", route)
    return blocked
