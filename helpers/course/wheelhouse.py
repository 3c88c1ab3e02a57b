"""One folder with every wheel the project needs, for a room without internet: ``make wheelhouse``.

    python -m helpers.course.wheelhouse                   # download into build/wheelhouse/
    python -m helpers.course.wheelhouse --verify          # install from it, offline, into a fresh venv

It downloads the project's dependencies with the ``dev`` extra, the build backend (``setuptools``, so that
``pip install -e .`` works offline), and the zoo's pretrained packages from ``requirements-zoo.txt``
(``--no-deps``, as ``make setup`` installs them). A laptop then installs with::

    python3 -m venv .venv
    .venv/bin/pip install --no-index --find-links build/wheelhouse -e ".[dev]"
    .venv/bin/pip install --no-index --find-links build/wheelhouse --no-deps -r requirements-zoo.txt

The wheels are for the platform and Python of the machine that downloads (pip's own rule); for laptops of
another kind pass pip's ``--platform`` / ``--python-version`` / ``--only-binary=:all:`` through ``--pip-args``.

Example:
    >>> cmds = install_commands(Path("wh"), Path("venv/bin/python"))
    >>> all("--no-index" in c and "--find-links" in c for c in cmds)
    True
"""
from __future__ import annotations

import argparse
import re
import shlex
import subprocess
import sys
import time
import tomllib
from pathlib import Path
from typing import Optional, Sequence

from helpers.core.paths import BUILD_DIR, ROOT

WHEELHOUSE = BUILD_DIR / "wheelhouse"
ZOO_REQUIREMENTS = ROOT / "requirements-zoo.txt"


def build_requirements(root: Path = ROOT) -> list[str]:
    """What building the project itself needs (``[build-system] requires``), plus pip."""
    data = tomllib.loads((root / "pyproject.toml").read_text(encoding="utf-8"))
    return list(data["build-system"]["requires"]) + ["pip"]


def zoo_requirements(path: Path = ZOO_REQUIREMENTS) -> list[str]:
    """The pinned pretrained-model packages of ``requirements-zoo.txt`` (comments dropped)."""
    lines = (line.split("#", 1)[0].strip() for line in path.read_text(encoding="utf-8").splitlines())
    return [line for line in lines if line]


def download_commands(folder: Path, root: Path = ROOT, pip_args: Sequence[str] = (),
                      python: str = sys.executable) -> list[list[str]]:
    """The ``pip download`` commands that fill ``folder``."""
    pip = [python, "-m", "pip", "download", "--dest", str(folder), *pip_args]
    return [pip + [f"{root}[dev]", *build_requirements(root)],
            pip + ["--no-deps", "-r", str(root / "requirements-zoo.txt")]]


def install_commands(folder: Path, python: Path, root: Path = ROOT) -> list[list[str]]:
    """What a laptop runs to install from ``folder`` with no network (``python`` is the venv's)."""
    pip = [str(python), "-m", "pip", "install", "--no-index", "--find-links", str(folder)]
    return [pip + ["-e", f"{root}[dev]"],
            pip + ["--no-deps", "-r", str(root / "requirements-zoo.txt")]]


def download(folder: Path = WHEELHOUSE, pip_args: Sequence[str] = ()) -> float:
    """Fill ``folder``; returns the seconds it took. Raises ``subprocess.CalledProcessError`` on a pip error."""
    folder.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    for cmd in download_commands(folder, pip_args=pip_args):
        print("$", shlex.join(cmd), flush=True)
        subprocess.run(cmd, check=True)
    return time.perf_counter() - t0


def _normal(name: str) -> str:
    """A distribution name as wheel files spell it (PEP 503 normalised, then ``-`` -> ``_``)."""
    return re.sub(r"[-_.]+", "_", name).lower()


def check_complete(folder: Path) -> None:
    """Raise ``FileNotFoundError`` naming what is missing when ``folder`` lacks the zoo or build wheels."""
    if not folder.is_dir():
        raise FileNotFoundError(f"no wheelhouse at {folder}: run `make wheelhouse` first")
    have = {_normal(p.name.split("-")[0]) for p in folder.iterdir() if p.suffix in (".whl", ".gz", ".zip")}
    wanted = [re.split(r"[=<>!~\[; ]", r, maxsplit=1)[0] for r in zoo_requirements() + build_requirements()]
    missing = [w for w in wanted if _normal(w) not in have]
    if missing:
        raise FileNotFoundError(f"{folder} lacks wheels for {', '.join(missing)}: run `make wheelhouse` again")


def verify(folder: Path = WHEELHOUSE, venv: Optional[Path] = None) -> float:
    """Install the project from ``folder`` alone into a fresh venv and import it; returns the seconds.

    The venv is made without pip's configuration (``PIP_CONFIG_FILE=/dev/null``, no extra index or find-links),
    so nothing can come from anywhere but ``folder``.
    """
    import os
    import tempfile
    import venv as venv_module

    check_complete(folder)
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="wheelhouse-venv-") as tmp:
        target = venv or Path(tmp) / "venv"
        venv_module.EnvBuilder(with_pip=True, clear=True).create(target)
        python = target / "bin" / "python"
        env = {k: v for k, v in os.environ.items() if not k.startswith("PIP_")}
        env.update(PIP_CONFIG_FILE=os.devnull, PIP_DISABLE_PIP_VERSION_CHECK="1", PYTHONPATH="")
        for cmd in install_commands(folder, python):
            print("$", shlex.join(cmd), flush=True)
            subprocess.run(cmd, check=True, env=env)
        probe = ("import helpers, torch, jupyterlab, ipywidgets, nbconvert, jupyter_server_mathjax; "
                 "from helpers.zoo import pretrained; print('import ok', torch.__version__)")
        subprocess.run([str(python), "-c", probe], check=True, env=env, cwd=tmp)
    return time.perf_counter() - t0


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m helpers.course.wheelhouse", description=__doc__.split("\n\n")[0])
    parser.add_argument("--dest", default=str(WHEELHOUSE), help="folder (default build/wheelhouse)")
    parser.add_argument("--verify", action="store_true", help="install from the folder into a fresh venv, offline")
    parser.add_argument("--pip-args", default="", help="extra pip download arguments, e.g. '--platform win_amd64 "
                                                       "--python-version 3.11 --only-binary=:all:'")
    args = parser.parse_args(argv)
    folder = Path(args.dest)
    try:
        if args.verify:
            print(f"offline install from {folder} works ({verify(folder):.0f} s)")
        else:
            seconds = download(folder, shlex.split(args.pip_args))
            size = sum(p.stat().st_size for p in folder.iterdir()) / 2**30
            print(f"{len(list(folder.iterdir()))} files, {size:.1f} GiB in {folder} ({seconds:.0f} s)")
    except (subprocess.CalledProcessError, FileNotFoundError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
