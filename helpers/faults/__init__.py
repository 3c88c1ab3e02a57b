"""Faults and monitoring (notebook 18).

| module | what |
|---|---|
| ``bitflip`` | bit flips in float32 and int8 numbers; random faults at a bit-error rate; weight faults that are always undone; activation faults as an edit |
| ``clipping`` | FT-ClipAct: per-layer activation bounds from clean data, squashing or saturating clipped activations |
| ``patches`` | adversarial patches: pasting, a universal patch trained by gradient steps |
| ``spann`` | SpaNN's detector features: saliency thresholds, DBSCAN-style clusters on a grid |
| ``monitor`` | a runtime monitor: per-layer activation statistics with bounds from clean data |
"""
