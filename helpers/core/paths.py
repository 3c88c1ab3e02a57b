"""Where the project keeps things: its own folders and the user's cache.

Every path here is absolute, found from this file, so a notebook gives the same answer wherever it runs
(``notebooks/``, the learner copies in ``build/student/``, papermill's working folder):

Example:
    >>> build_dir("activations", "00_tour") == ROOT / "build" / "activations" / "00_tour"
    True
    >>> build_dir("activations").is_absolute()
    True
"""
from __future__ import annotations

import os
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]  # the repository: helpers/core/paths.py -> ../.. (installed editable)
DATA_DIR = ROOT / "data"
ZOO_DIR = DATA_DIR / "zoo"
BUILD_DIR = ROOT / "build"


def build_dir(*parts: str) -> Path:
    """A folder (or file) under the project's ``build/``, e.g. ``build_dir("activations", "00_tour")``.

    Notebooks write there with this instead of ``"../build/..."``, which resolved against the working
    folder and so pointed to ``build/build/...`` when a learner copy ran from ``build/student/``.
    """
    for part in parts:
        if Path(part).is_absolute() or ".." in Path(part).parts:
            raise ValueError(f"build_dir takes names inside build/, got {part!r}; use plain names like 'activations'")
    return BUILD_DIR.joinpath(*parts)


def cache_dir() -> Path:
    """The user cache folder (``$ACTIVATION_LAB_CACHE`` or ``~/.cache/activation-lab``) for converted weights."""
    return Path(os.environ.get("ACTIVATION_LAB_CACHE", "~/.cache/activation-lab")).expanduser()
