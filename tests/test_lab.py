"""make lab: JupyterLab starts (as root too) with the project's defaults (no news prompt)."""
from __future__ import annotations

import json
import os
import socket
import subprocess
import time
import urllib.request

from helpers.course import lab


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_command_adds_allow_root_only_for_root():
    assert "--allow-root" in lab.lab_command(as_root=True)
    assert "--allow-root" not in lab.lab_command(as_root=False)
    # rooted at the project, so notebooks/ and build/student/ are both reachable
    assert f"--notebook-dir={lab.ROOT}" in lab.lab_command(as_root=False)


def test_lab_serves_and_turns_the_news_prompt_off(tmp_path):
    lab.install_overrides()
    port, token = free_port(), "test-token"
    cmd = lab.lab_command(port=port) + [f"--IdentityProvider.token={token}"]
    env = {**os.environ, "JUPYTER_RUNTIME_DIR": str(tmp_path / "runtime"), "JUPYTERLAB_SETTINGS_DIR": str(tmp_path / "user")}
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env)
    try:
        url = f"http://127.0.0.1:{port}/lab/api/settings/@jupyterlab/apputils-extension:notification?token={token}"
        deadline, body = time.time() + 90, None
        while time.time() < deadline and proc.poll() is None:
            try:
                body = json.loads(urllib.request.urlopen(url, timeout=5).read())
                break
            except OSError:
                time.sleep(0.5)
        assert body is not None, f"JupyterLab did not start (exit {proc.poll()}): {proc.stdout.read(3000) if proc.poll() is not None else ''}"
        # overrides.json replaces the schema's defaults, which the page uses when the user set nothing
        defaults = {k: v.get("default") for k, v in body["schema"]["properties"].items()}
        assert defaults["fetchNews"] == "false" and defaults["checkForUpdates"] is False, defaults
        # and opening a notebook starts its kernel instead of asking "Select Kernel" first
        url = url.replace("apputils-extension:notification", "notebook-extension:tracker")
        tracker = json.loads(urllib.request.urlopen(url, timeout=5).read())
        assert tracker["schema"]["properties"]["autoStartDefaultKernel"]["default"] is True
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
