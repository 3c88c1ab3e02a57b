"""Geometry of activations: covariance spectra, similarity and information measures (lesson 08).

| module | what |
|---|---|
| ``diffusion`` | diffusion spectral entropy (DSE) and mutual information (DSMI) |

The generic maths lives in ``helpers.ops``: ``covariance`` (streaming covariance, partial correlations),
``randmat`` (Marchenko-Pastur, effective rank), ``similarity`` (linear CKA).
"""
