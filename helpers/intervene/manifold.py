"""Linear versus manifold steering between the classes of a cyclic concept (e.g. the days of the week).

The class centroids (K, d) are projected on their first two principal directions and a circle is fitted there
(:func:`helpers.ops.curves.fit_circle`). To move an activation from class ``a`` towards class ``b``:

- the **linear** path adds ``t * (c_b - c_a)``, the straight chord between the two centroids;
- the **circle** path walks the short arc from a's angle to b's angle in the plane (the radius going from a's
  to b's), while the part of the centroids outside the plane goes linearly from a's to b's.

Both paths start at ``c_a`` and end at ``c_b`` (t = 0 and t = 1); only the way between differs. This is the
notebook's simple version of the manifold steering of Wurgaft et al. (2026), who fit the activation manifold
with their own curve fits and compare against the behaviour manifold of output distributions.

Example:
    >>> t = torch.arange(7) * 2 * math.pi / 7
    >>> cents = torch.zeros(7, 5); cents[:, 0], cents[:, 1] = t.cos(), t.sin()
    >>> plane = fit_plane(cents)
    >>> plane.fit.residual < 1e-5, torch.allclose(circle_path(plane, 0, 3, torch.tensor([1.0]))[0], cents[3] - cents[0], atol=1e-5)
    (True, True)
"""
from __future__ import annotations

import math  # noqa: F401 (the example uses it)
from dataclasses import dataclass

import torch

from helpers.ops.curves import CircleFit, arc_points, fit_circle, is_cyclic_order


@dataclass
class CirclePlane:
    """Centroids, the plane of their first two principal directions and the circle fitted in it."""

    centroids: torch.Tensor  # (K, d)
    mean: torch.Tensor       # (d,)
    basis: torch.Tensor      # (2, d) orthonormal rows
    fit: CircleFit           # in plane coordinates

    @property
    def coords(self) -> torch.Tensor:
        """The centroids in the plane, (K, 2)."""
        return (self.centroids - self.mean) @ self.basis.T


def fit_plane(centroids: torch.Tensor) -> CirclePlane:
    """PCA-2 plane of ``centroids`` (K, d), K >= 3, and the least-squares circle of the projected centroids."""
    if centroids.dim() != 2 or len(centroids) < 3:
        raise ValueError(f"centroids must be (K, d) with K >= 3, got {tuple(centroids.shape)}")
    c = centroids.float()
    mean = c.mean(0)
    _, _, vh = torch.linalg.svd((c - mean).double(), full_matrices=False)
    basis = vh[:2].float()
    return CirclePlane(c, mean, basis, fit_circle((c - mean) @ basis.T))


def shuffled_residuals(acts: torch.Tensor, n: int = 100, seed: int = 0) -> torch.Tensor:
    """The circle residual of :func:`fit_plane` after shuffling the class labels, ``n`` times.

    ``acts`` (G, K, d) holds G examples of each of K classes; all G*K rows are permuted and regrouped into K
    classes of G before the centroids are taken. This is the baseline the real residual must beat.

    Example:
        >>> shuffled_residuals(torch.randn(4, 7, 10), n=3).shape
        torch.Size([3])
    """
    if acts.dim() != 3:
        raise ValueError(f"acts must be (G, K, d), got {tuple(acts.shape)}")
    g_, k, d = acts.shape
    flat = acts.reshape(-1, d)
    gen = torch.Generator().manual_seed(seed)
    out = [fit_plane(flat[torch.randperm(len(flat), generator=gen)].reshape(g_, k, d).mean(0)).fit.residual
           for _ in range(n)]
    return torch.tensor(out)


def _check(plane: CirclePlane, a: int, b: int, ts: torch.Tensor) -> None:
    k = len(plane.centroids)
    if not (0 <= a < k and 0 <= b < k):
        raise ValueError(f"classes must lie in 0..{k - 1}, got {a} and {b}")
    if ts.dim() != 1:
        raise ValueError(f"ts must be 1-D, got {tuple(ts.shape)}")


def linear_path(plane: CirclePlane, a: int, b: int, ts: torch.Tensor) -> torch.Tensor:
    """Offsets (T, d) to add to an activation of class ``a``: ``t * (c_b - c_a)`` for each t of ``ts``."""
    _check(plane, a, b, ts)
    return ts.float()[:, None] * (plane.centroids[b] - plane.centroids[a])


def circle_path(plane: CirclePlane, a: int, b: int, ts: torch.Tensor) -> torch.Tensor:
    """Offsets (T, d) to add to an activation of class ``a`` that move its centroid along the circle to ``b``."""
    _check(plane, a, b, ts)
    xy = plane.coords
    centre = plane.fit.centre
    ra, rb = float((xy[a] - centre).norm()), float((xy[b] - centre).norm())
    aa, ab = float(plane.fit.angles[a]), float(plane.fit.angles[b])
    in_plane = arc_points(centre, ra, rb, aa, ab, ts) @ plane.basis                       # (T, d)
    rest = (plane.centroids - plane.mean) - xy @ plane.basis                              # off-plane parts (K, d)
    off = rest[a] + ts.float()[:, None] * (rest[b] - rest[a])
    return plane.mean + in_plane + off - plane.centroids[a]


def angular_order_ok(plane: CirclePlane) -> bool:
    """Whether the classes, in their given order, go once around the fitted circle (in either direction)."""
    return is_cyclic_order(plane.fit.angles)
