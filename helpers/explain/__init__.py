"""Explaining a model's decisions from its activations (notebooks 04-07 and 14).

| module | what |
|---|---|
| ``cam`` | class activation maps: CAM, Grad-CAM, Grad-CAM++, HiResCAM, Score-CAM, Eigen-CAM, Layer-CAM |
| ``faithfulness`` | are maps faithful? perturbation curves, localisation against masks, randomisation checks |
| ``featvis`` | feature visualisation: activation maximisation, dataset examples, facets |
| ``fake_detection`` | the real-vs-generated detector of notebook 07 |
| ``token_maps`` | token activation maps (TAM) of a decoder's words over its visual tokens, with ECI and the rank Gaussian filter (notebook 14) |
| ``targets`` | the one check of class targets (one integer id per image) used by ``cam`` and ``faithfulness`` |
"""
