"""Reading information out of activations: probes and lenses (notebook 09).

| module | what |
|---|---|
| ``probes`` | linear and MLP probes per layer, Hewitt & Liang control tasks and selectivity, labelled tinyworld tokens |
| ``lenses`` | logit lens, tuned lens (affine translators on cached residuals), KL / accuracy per layer |
| ``next_token`` | next-token logits and last-token states of any decoder LM, prompts of any token length |
| ``authorship`` | two generated "authors" with different habits, bag-of-words baselines, sentence embeddings |

The logistic-regression fit the probes use is generic: :mod:`helpers.ops.logistic`.
"""
