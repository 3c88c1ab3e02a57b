"""The curriculum in a real browser: JupyterLab and the offline site in Debian's Chromium, driven by Playwright.

JupyterLab runs on 127.0.0.1 with a token, rooted at a temporary copy (so Run All never saves outputs into
notebooks/). Screenshots go to build/screenshots/. Without Chromium or Playwright every test here is skipped
with a one-line reason (`make setup` installs Chromium with apt where apt exists; Playwright is a dev
dependency and never downloads a browser of its own).
"""
from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from helpers.course import lab, site
from helpers.course.notebooks import NOTEBOOK_DIR, ROOT

SHOTS = ROOT / "build" / "screenshots"
TOUR = "00_tour.ipynb"  # the notebook with a unit-browser explorer (see /work/plan/JUPYTER_API.md)


def chromium() -> str | None:
    """The system Chromium: $ACTIVATION_LAB_CHROMIUM, or the first of chromium / chromium-browser on PATH."""
    for candidate in (os.environ.get("ACTIVATION_LAB_CHROMIUM"), shutil.which("chromium"),
                      shutil.which("chromium-browser")):
        if candidate and Path(candidate).exists():
            return candidate
    return None


def _skip_reason() -> str | None:
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "Playwright for Python is not installed (pip install -e '.[dev]')"
    if chromium() is None:
        return "no Chromium on this machine (apt-get install chromium; make setup does it where apt exists)"
    return None


pytestmark = pytest.mark.skipif(_skip_reason() is not None, reason=_skip_reason() or "")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """JupyterLab on a temporary root holding notebooks/00_tour.ipynb and build/student/ (learner copies)."""
    root = tmp_path_factory.mktemp("labroot")
    (root / "notebooks").mkdir()
    shutil.copy(NOTEBOOK_DIR / TOUR, root / "notebooks" / TOUR)
    subprocess.run([sys.executable, "-m", "helpers.course.student", "00", "--out", str(root / "build" / "student")],
                   check=True, cwd=ROOT)
    settings = root / ".user-settings" / "@jupyterlab" / "notebook-extension"
    settings.mkdir(parents=True)  # every cell in the DOM, so prompts and outputs can be read
    (settings / "tracker.jupyterlab-settings").write_text(json.dumps({"windowingMode": "none"}))
    lab.install_overrides()
    port, token = _free_port(), "browser-test-token"
    env = {**os.environ, "ACTIVATION_LAB_STATIC": "0", "JUPYTER_RUNTIME_DIR": str(root / ".runtime"),
           "JUPYTERLAB_SETTINGS_DIR": str(root / ".user-settings"), "JUPYTERLAB_WORKSPACES_DIR": str(root / ".ws")}
    cmd = lab.lab_command(port=port, notebook_dir=root) + [f"--IdentityProvider.token={token}"]
    log = open(root / "lab.log", "wb")
    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env)
    base = f"http://127.0.0.1:{port}"
    deadline = time.time() + 90
    while time.time() < deadline and proc.poll() is None:
        try:
            urllib.request.urlopen(f"{base}/api/status?token={token}", timeout=5)
            break
        except OSError:
            time.sleep(0.5)
    else:
        proc.kill()
        pytest.fail(f"JupyterLab did not start: {(root / 'lab.log').read_text()[-2000:]}")
    yield {"base": base, "token": token, "root": root}
    proc.terminate()
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()
    log.close()


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright
    SHOTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=chromium(), headless=True)
        yield b
        b.close()


def _open(browser, server, path: str):
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    page.goto(f"{server['base']}/lab/tree/{path}?token={server['token']}")
    page.wait_for_selector(".jp-Notebook .jp-Cell", timeout=60_000)
    # the kernel starts by itself (overrides.json: autoStartDefaultKernel); "idle" alone also shows before it exists
    page.wait_for_function("""() => { const name = document.querySelector('.jp-Toolbar-kernelName');
        const state = document.querySelector('.jp-Notebook-ExecutionIndicator');
        return name && !name.textContent.includes('No Kernel') && state && state.dataset.status === 'idle'; }""",
                           timeout=90_000, polling=500)
    return page


def _run_all(page, timeout_s: float = float(os.environ.get("BROWSER_RUN_ALL_TIMEOUT", 300))) -> None:
    page.locator(".lm-MenuBar-itemLabel", has_text="Run").first.click()
    page.locator(".lm-Menu-itemLabel", has_text="Run All Cells").first.click()
    try:
        page.wait_for_function(
            """() => { const p = [...document.querySelectorAll('.jp-Notebook .jp-CodeCell .jp-InputPrompt')]
                         .map(e => e.textContent);
                       return p.some(t => /\\[\\d+\\]/.test(t)) && !p.some(t => t.includes('*')); }""",
            timeout=timeout_s * 1000, polling=1000)
    except Exception:
        page.screenshot(path=str(SHOTS / "lab_run_all_timeout.png"), full_page=True)
        prompts = page.locator(".jp-Notebook .jp-CodeCell .jp-InputPrompt").all_inner_texts()
        raise AssertionError(f"Run All did not finish in {timeout_s:.0f} s; prompts: {prompts}")


def _saved_outputs(page, server, path: str) -> list[dict]:
    """Save the notebook from the page, then read its outputs back through the server's contents API."""
    page.keyboard.press("Control+s")
    url = f"{server['base']}/api/contents/{path}?content=1&token={server['token']}"
    deadline = time.time() + 30
    while time.time() < deadline:
        cells = json.loads(urllib.request.urlopen(url, timeout=10).read())["content"]["cells"]
        outputs = [o for c in cells if c["cell_type"] == "code" for o in c.get("outputs", [])]
        if outputs:
            return outputs
        time.sleep(0.5)
    raise AssertionError(f"{path} was not saved with outputs")


def test_lab_runs_a_notebook_and_an_explorer_answers_its_slider(browser, server):
    path = f"notebooks/{TOUR}"
    page = _open(browser, server, path)
    _run_all(page)
    page.screenshot(path=str(SHOTS / "lab_00_run_all.png"))
    # first-run prompts are off by the project's overrides.json (a kernel dialog would have stopped Run All)
    assert page.get_by_text("official Jupyter news").count() == 0, "the news prompt is shown"
    errors = [o for o in _saved_outputs(page, server, path) if o["output_type"] == "error"]
    assert not errors, f"{TOUR}: {errors[0]['ename']}: {errors[0]['evalue']}" if errors else ""
    explorer = page.locator(".al-unit-browser").first
    explorer.scroll_into_view_if_needed()
    status, figure = explorer.locator(".al-explorer-status"), explorer.locator(".widget-output img").first
    before = (status.inner_text(), figure.get_attribute("src"))
    handle = explorer.locator(".widget-slider", has_text="unit").locator(".noUi-handle")
    handle.click()
    handle.press("ArrowRight")
    page.wait_for_function("([el, old]) => el.textContent !== old", arg=[status.element_handle(), before[0]],
                           timeout=60_000)
    after = (status.inner_text(), figure.get_attribute("src"))
    explorer.screenshot(path=str(SHOTS / "lab_00_explorer_moved.png"))
    assert after[0] != before[0] and after[1] != before[1], (before[0], after[0])
    page.close()


def test_learner_notebook_shows_the_friendly_message_and_runs_to_the_end(browser, server):
    path = f"build/student/{TOUR}"
    page = _open(browser, server, path)
    _run_all(page)
    notice = page.locator(".al-exercise-notice").first
    notice.scroll_into_view_if_needed()
    page.screenshot(path=str(SHOTS / "lab_student_00_notice.png"))
    assert notice.inner_text().startswith("Exercise not done yet:")
    outputs = _saved_outputs(page, server, path)
    errors = [o for o in outputs if o["output_type"] == "error"]
    assert not errors, f"learner {TOUR}: {errors[0]['ename']}: {errors[0]['evalue']}" if errors else ""
    prompts = page.locator(".jp-Notebook .jp-CodeCell .jp-InputPrompt").all_inner_texts()
    assert all("[" in p and p.strip() != "[ ]:" for p in prompts), "Run All stopped before the end"
    page.close()


def test_site_opens_offline_with_formulas_typeset(browser, tmp_path):
    with_math = [p.stem for p in sorted(NOTEBOOK_DIR.glob("*.ipynb")) if "$$" in p.read_text()][:2]
    pages = site.build_site(tmp_path / "site", selection=with_math)
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    leaving: list[str] = []

    def only_files(route):
        if route.request.url.startswith("file:"):
            return route.continue_()
        leaving.append(route.request.url)
        return route.abort()

    context.route("**/*", only_files)
    page = context.new_page()
    page.goto(pages[2].as_uri())
    page.wait_for_function("window.MathJax && MathJax.Hub && MathJax.Hub.queue.pending === 0 "
                           "&& document.querySelectorAll('.MathJax, .MathJax_Display').length > 0", timeout=60_000)
    page.screenshot(path=str(SHOTS / f"site_{pages[2].stem}.png"))
    text = page.inner_text("main")
    assert "$$" not in text and page.locator(".MathJax_Display").count() > 0
    assert page.title() == site.read_lesson(NOTEBOOK_DIR / f"{pages[2].stem}.ipynb").title
    assert not leaving, f"the page asked the network for {leaving[:3]}"
    page.click("nav.al-nav a.al-index")
    page.wait_for_selector("table.al-index")
    page.screenshot(path=str(SHOTS / "site_index.png"))
    assert page.locator("table.al-index tbody tr").count() == len(with_math)
    context.close()
