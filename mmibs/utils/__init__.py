# Copyright (c) mmibs contributors. All rights reserved.
"""Helpers without registered modules: atomic writes, the json reader, panoptic id encoding.

Import them from their modules (``mmibs.utils.atomic_io``, ``mmibs.utils.fileio``,
``mmibs.utils.panoptic_ids``).
"""
