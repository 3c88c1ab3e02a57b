"""Activation functions and learnable activations (notebooks 01 and 02).

| module | what |
|---|---|
| ``library`` | the activation functions, their derivatives, dead units, mean shift |
| ``propagation`` | signal propagation through deep stacks under naive / Xavier / Kaiming init |
| ``evonorm`` | EvoNorm-B0 and S0 |
| ``kan`` | B-spline Kolmogorov-Arnold networks |
| ``kan_spaces`` | other KAN edge spaces (Chebyshev, Fourier, activation bells as in ReLU-KAN / AF-KAN) and per-edge space selection (S-KAN) |
| ``fourier`` | a data re-uploading (Fourier) activation (DARUAN) and its spectrum |
| ``formulas`` / ``search`` / ``benchmark`` | activation formulas as trees, a genetic search over them, the task that scores them |
"""
