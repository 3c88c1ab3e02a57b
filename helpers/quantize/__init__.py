"""Quantization of activations and weights (lesson 16): calibration, real int8 matmul, mixed bit widths.

The integer arithmetic itself (ranges -> scale and zero point -> codes) is generic and lives in
:mod:`helpers.ops.quantization`; this package builds the lesson's tools on it:

- :mod:`helpers.quantize.calibration`: min-max, percentile and MSE ranges, per tensor or per channel;
- :mod:`helpers.quantize.int8`: real int8 matmul on the CPU (``torch._int_mm``), an int8 Linear, whole-model
  fake quantization on a copy, and model sizes in bytes;
- :mod:`helpers.quantize.mixed_bits`: per-channel bit widths, by a sensitivity ranking or learned under a budget (AMAQ).
"""
