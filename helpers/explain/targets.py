"""One check for class targets, shared by everything in ``helpers.explain`` that takes one class per image.

The class activation maps (``helpers.explain.cam``) and the perturbation curves
(``helpers.explain.faithfulness.perturbation_curve``) both take ``targets``: one integer class id per
image. :func:`check_targets` turns what the caller gave into a LongTensor ``(B,)`` or raises a
``ValueError`` saying what is wrong. Callers run it before any forward pass; the upper bound needs the
number of classes, which they pass as soon as they know it (before any gradient or extra forward).
"""
from __future__ import annotations

from typing import Optional, Sequence, Union

import torch

Targets = Union[torch.Tensor, Sequence[int]]


def check_targets(targets: Targets, batch: int, n_classes: Optional[int] = None,
                  device: Union[str, torch.device, None] = None) -> torch.Tensor:
    """``targets`` as a LongTensor ``(batch,)`` on ``device``, or a ``ValueError`` that names the problem.

    Refused: anything that is not a 1-D sequence of integers (a single number, floats, bools, strings), a
    length other than ``batch`` (pytorch-grad-cam silently pairs a shorter list with the first images and
    returns all-zero maps for the rest), a negative id, and, when ``n_classes`` is given, an id ``>= n_classes``.

    Example:
        >>> check_targets([2, 0], batch=2, n_classes=3)
        tensor([2, 0])
        >>> check_targets([2, 0, 1], batch=2)
        Traceback (most recent call last):
        ...
        ValueError: targets must be one integer class id per image: got 3 ids for a batch of 2 images.
    """
    what = "targets must be one integer class id per image"
    try:
        t = torch.as_tensor(targets, device=device)
    except (TypeError, ValueError, RuntimeError) as err:
        raise ValueError(f"{what} (a LongTensor or a list of {batch} ints), got {targets!r:.80}") from err
    if t.dtype.is_floating_point or t.dtype.is_complex or t.dtype == torch.bool:
        raise ValueError(f"{what}, got dtype {t.dtype}: {targets!r:.80} (use .long() if they are whole numbers)")
    if t.ndim != 1:
        raise ValueError(f"{what} (a LongTensor or a list of {batch} ints), got shape {tuple(t.shape)}: "
                         f"{targets!r:.80}")
    if len(t) != batch:
        raise ValueError(f"{what}: got {len(t)} ids for a batch of {batch} images.")
    if batch and int(t.min()) < 0:
        raise ValueError(f"{what}, each >= 0; got {t.tolist()[:20]}")
    if n_classes is not None and batch and int(t.max()) >= n_classes:
        raise ValueError(f"{what}, each in [0, {n_classes}) (the model has {n_classes} outputs); "
                         f"got {t.tolist()[:20]}")
    return t.long()


__all__ = ["Targets", "check_targets"]
