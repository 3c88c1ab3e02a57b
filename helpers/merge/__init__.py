"""Merging fine-tuned copies of one model (lesson 17).

| module | what |
|---|---|
| ``regmean`` | architecture check, plain averaging, task arithmetic, RegMean (merging by input Gram matrices) |
| ``bayesian`` | a Bayesian merge: RegMean with a Gaussian prior at an anchor model, lam tuned on validation data |

The input Gram matrices come from ``helpers.ops.whitening.input_grams``.
"""
