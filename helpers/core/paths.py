"""Where the project keeps things: its own folders and the user's cache."""
from __future__ import annotations

import os
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]  # the repository: helpers/core/paths.py -> ../.. (installed editable)
DATA_DIR = ROOT / "data"
ZOO_DIR = DATA_DIR / "zoo"


def cache_dir() -> Path:
    """The user cache folder (``$ACTIVATION_LAB_CACHE`` or ``~/.cache/activation-lab``) for converted weights."""
    return Path(os.environ.get("ACTIVATION_LAB_CACHE", "~/.cache/activation-lab")).expanduser()
