"""A live Utfall server (uvicorn on 127.0.0.1, free port) over a seeded SQLite store,
and headless Debian Chromium through Playwright."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from cryptography.fernet import Fernet

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"


@dataclass
class LiveServer:
    url: str
    keys: dict[str, str]
    org: dict[str, int]
    env: dict[str, str]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def seeded_env(folder: Path) -> Iterator[dict[str, str]]:
    """Environment of the server (also applied to this process while seeding)."""
    env = {"UTFALL_DATA_DIR": str(folder / "data"),
           "UTFALL_DATABASE_URL": f"sqlite:///{folder / 'e2e.db'}",
           "UTFALL_SECRET_KEY": "e2e-secret-" + "k" * 32,
           "UTFALL_ENCRYPTION_KEY": Fernet.generate_key().decode()}
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    from utfall.config import get_settings

    get_settings.cache_clear()
    try:
        yield env
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
        get_settings.cache_clear()


@contextmanager
def live_server(folder: Path) -> Iterator[LiveServer]:
    """Seed the store, start uvicorn, poll until it answers, terminate it after."""
    from tests.web.factory import build_world

    with seeded_env(folder) as env:
        world = build_world(env["UTFALL_DATABASE_URL"])
        keys, org = world.keys, world.org
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "utfall.web.app:create_app", "--factory",
         "--host", "127.0.0.1", "--port", str(port), "--log-level", "warning"],
        env={**os.environ, **env}, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(url + "/healthz", timeout=1) as r:
                    if r.status == 200:
                        break
            except OSError:
                if proc.poll() is not None:
                    out = proc.stdout.read().decode() if proc.stdout else ""
                    raise RuntimeError(f"server exited: {out[-2000:]}") from None
                if time.monotonic() > deadline:
                    raise TimeoutError("server did not answer") from None
                time.sleep(0.2)
        yield LiveServer(url, keys, org, env)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()


@contextmanager
def chromium() -> Iterator[object]:
    """A headless Chromium browser (Debian package, never downloaded)."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


def shot(page, name: str) -> Path:
    """Save a full-page screenshot to ``test-artifacts/``."""
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path
