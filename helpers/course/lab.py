"""Open JupyterLab on the curriculum: ``python -m helpers.course.lab`` (``make lab``).

It works as root (Docker images and workshop VMs run as root; JupyterLab refuses root without
``--allow-root``) and as a normal user, and installs the project's JupyterLab defaults first
(``jupyter/overrides.json``: no "get notified about Jupyter news?" prompt, no update check).

Example:
    >>> cmd = lab_command(as_root=True)
    >>> "--allow-root" in cmd and "--no-browser" in cmd
    True
"""
from __future__ import annotations

import argparse
import os
import shutil
import sys
from pathlib import Path

from helpers.core.paths import ROOT

OVERRIDES = ROOT / "jupyter" / "overrides.json"


def settings_dir(prefix: str | Path = sys.prefix) -> Path:
    """Where JupyterLab reads application-wide setting defaults (``overrides.json``) in this environment."""
    return Path(prefix) / "share" / "jupyter" / "lab" / "settings"


def install_overrides(prefix: str | Path = sys.prefix) -> Path:
    """Copy the project's ``overrides.json`` into the environment's JupyterLab settings folder; returns its path."""
    target = settings_dir(prefix) / "overrides.json"
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(OVERRIDES, target)
    return target


def lab_command(as_root: bool | None = None, port: int | None = None, notebook_dir: str | Path = ROOT) -> list[str]:
    """The ``jupyter lab`` command line; ``as_root`` defaults to whether this process runs as root."""
    if as_root is None:
        as_root = hasattr(os, "geteuid") and os.geteuid() == 0
    cmd = [sys.executable, "-m", "jupyterlab", f"--notebook-dir={notebook_dir}", "--ServerApp.ip=127.0.0.1",
           "--no-browser"]
    if port is not None:
        cmd.append(f"--ServerApp.port={port}")
    if as_root:
        cmd.append("--allow-root")
    return cmd


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m helpers.course.lab", description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=int, default=None, help="port (default: JupyterLab's, 8888 or the next free)")
    args = parser.parse_args(argv)
    install_overrides()
    cmd = lab_command(port=args.port)
    os.execv(cmd[0], cmd)


if __name__ == "__main__":
    main()
