"""A real server on a free port with demo data, and headless Debian Chromium."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
LOGIN_LINE = re.compile(r"^\s+(\w+)\s+(\S+)\s+password: (\S+)$", re.MULTILINE)
STARTUP_SECONDS = 60

pytestmark = pytest.mark.browser


@dataclass(frozen=True)
class LiveApp:
    url: str
    passwords: dict[str, str]
    env: dict[str, str]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _wait_healthy(url: str, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + STARTUP_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError("the Streamlit server exited during start-up")
        try:
            with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as reply:
                if reply.status == 200:
                    return
        except OSError:
            time.sleep(0.3)
    raise RuntimeError(f"the server at {url} did not become healthy")


@pytest.fixture(scope="session")
def live_app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveApp]:
    """`init-db --demo` then `streamlit run app.py`, as `make run` does."""
    if not CHROMIUM.exists():
        pytest.skip("Debian's chromium is not installed")
    folder = tmp_path_factory.mktemp("live")
    env = {
        **os.environ,
        "RETRO_DATABASE_URL": f"sqlite:///{folder / 'retro.db'}",
        "RETRO_DATA_DIR": str(folder / "data"),
        "RETRO_SECRETS_FILE": str(folder / "none.toml"),
        "RETRO_DEMO_MODE": "true",
        "RETRO_SCHEDULER_ENABLED": "false",
        "STREAMLIT_BROWSER_GATHER_USAGE_STATS": "false",
    }
    env.pop("RETRO_COOKIE_KEY", None)
    seeded = subprocess.run(
        [sys.executable, "-m", "core.cli", "init-db", "--demo"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    passwords = {m[0]: m[2] for m in LOGIN_LINE.findall(seeded.stdout)}
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "streamlit",
            "run",
            "app.py",
            "--server.port",
            str(port),
            "--server.headless",
            "true",
            "--server.address",
            "127.0.0.1",
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        _wait_healthy(url, process)
        yield LiveApp(url=url, passwords=passwords, env=env)
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()


@pytest.fixture(scope="session")
def browser() -> Iterator[object]:
    playwright_api = pytest.importorskip("playwright.sync_api")
    if not CHROMIUM.exists():
        pytest.skip("Debian's chromium is not installed")
    with playwright_api.sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=CHROMIUM_ARGS
        )
        yield chromium
        chromium.close()


# The app counts as settled once no script run has shown for this long: a run
# can start a moment after the event that caused it (a rerun the login cookie
# component asks for, a widget committing on Enter), and an action sent in that
# gap is lost when the run begins.
SETTLE_MS = 1_000
_SETTLED = """(quietMs) => {
  const main = '[data-testid="stMain"] [data-testid="stVerticalBlock"] *';
  const busy = document.querySelector('[data-testid="stStatusWidget"]')
    || !document.querySelector(main);
  if (busy) { window.__retroQuietSince = undefined; return false; }
  window.__retroQuietSince = window.__retroQuietSince || Date.now();
  return Date.now() - window.__retroQuietSince >= quietMs;
}"""


def wait_for_app(page: object) -> None:
    """Wait for the app shell, then for the script runs to settle."""
    page.wait_for_selector('[data-testid="stApp"]', timeout=30_000)  # type: ignore[attr-defined]
    page.evaluate("() => { window.__retroQuietSince = undefined; }")  # type: ignore[attr-defined]
    page.wait_for_function(  # type: ignore[attr-defined]
        _SETTLED, arg=SETTLE_MS, timeout=30_000, polling=100
    )


def submit_login(page: object, username: str, password: str) -> None:
    page.locator(".st-key-login_username input").fill(username)  # type: ignore[attr-defined]
    page.locator(".st-key-login_password input").fill(password)  # type: ignore[attr-defined]
    page.get_by_role("button", name="Log in").click()  # type: ignore[attr-defined]


def log_in(page: object, username: str, password: str) -> None:
    """Log in, then wait for the cookie and the rerun its component asks for."""
    submit_login(page, username, password)
    page.wait_for_function(  # type: ignore[attr-defined]
        "() => document.cookie.includes('retro_auth')", timeout=30_000
    )
    wait_for_app(page)
