# Copyright (c) mmibs contributors. All rights reserved.
"""Toy experiments on synthetic Cityscapes-layout scenes: the demo, the IBS study, the benchmarks
and the synthetic data they and the tests use (README.md of this folder)."""
