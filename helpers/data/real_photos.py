"""Real photographs that ship inside the scikit-image and scikit-learn wheels (no network, no pooch).

Only images whose files are in the installed wheels are listed; ``skimage.data`` functions such as ``eagle``, ``lily``
or ``kidney`` fetch with pooch and are left out on purpose. Grey-scale photos are repeated to three channels.

Example:
    >>> from helpers.data import photos
    >>> p = photos()
    >>> p["chelsea"].shape, p["chelsea"].dtype
    ((300, 451, 3), dtype('uint8'))
"""

from __future__ import annotations

import functools
import importlib.util
from pathlib import Path

import numpy as np

# name -> (package, file inside the installed package). Read directly with Pillow: same pixels as
# ``skimage.data.<name>()`` / ``sklearn.datasets.load_sample_images()`` without their slow imports (several seconds).
# The order is fixed because ``wild`` uses the position as the background id.
PHOTO_FILES = {
    # colour photographs
    "astronaut": ("skimage", "data/astronaut.png"),
    "chelsea": ("skimage", "data/chelsea.png"),
    "coffee": ("skimage", "data/coffee.png"),
    "rocket": ("skimage", "data/rocket.jpg"),
    "motorcycle": ("skimage", "data/motorcycle_left.png"),  # left view of skimage.data.stereo_motorcycle()
    "hubble_deep_field": ("skimage", "data/hubble_deep_field.jpg"),
    "immunohistochemistry": ("skimage", "data/ihc.png"),
    "retina": ("skimage", "data/retina.jpg"),
    "china": ("sklearn", "datasets/images/china.jpg"),
    "flower": ("sklearn", "datasets/images/flower.jpg"),
    # grey-scale photographs (textures and scenes)
    "brick": ("skimage", "data/brick.png"),
    "camera": ("skimage", "data/camera.png"),
    "coins": ("skimage", "data/coins.png"),
    "grass": ("skimage", "data/grass.png"),
    "gravel": ("skimage", "data/gravel.png"),
    "moon": ("skimage", "data/moon.png"),
    "page": ("skimage", "data/page.png"),
}
PHOTO_NAMES = tuple(PHOTO_FILES)


@functools.lru_cache(maxsize=None)
def _load(name: str) -> np.ndarray:
    package, rel = PHOTO_FILES[name]
    spec = importlib.util.find_spec(package)  # locates the package without importing it
    if spec is None or not spec.submodule_search_locations:
        raise ModuleNotFoundError(f"photo {name!r} needs the {package} package: pip install scikit-image scikit-learn")
    from PIL import Image

    with Image.open(Path(list(spec.submodule_search_locations)[0]) / rel) as im:
        img = np.asarray(im)
    if img.ndim == 2:  # (H, W) -> (H, W, 3)
        img = np.repeat(img[:, :, None], 3, axis=2)
    img = np.ascontiguousarray(img[:, :, :3], dtype=np.uint8)
    img.flags.writeable = False
    return img


def photos(names: tuple[str, ...] | list[str] | None = None) -> dict[str, np.ndarray]:
    """Return ``{name: uint8 array (H, W, 3)}`` of the bundled real photographs (all of them by default).

    Example:
        >>> sorted(photos(["coffee", "china"]))
        ['china', 'coffee']
    """
    names = PHOTO_NAMES if names is None else tuple(names)
    unknown = [n for n in names if n not in PHOTO_FILES]
    if unknown:
        raise ValueError(f"unknown photo(s) {unknown}; valid: {list(PHOTO_NAMES)}")
    return {n: _load(n).copy() for n in names}
