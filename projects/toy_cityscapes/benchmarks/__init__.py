# Copyright (c) mmibs contributors. All rights reserved.
"""Time and memory of IBS and of the panoptic evaluation (README.md of the project)."""
