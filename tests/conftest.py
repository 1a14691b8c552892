# Copyright (c) mmibs contributors. All rights reserved.
"""Suite-wide settings: one torch thread per pytest worker (the suite runs with -n 2 on 2 cores)."""
import os

os.environ.setdefault('OMP_NUM_THREADS', '1')
os.environ.setdefault('MKL_NUM_THREADS', '1')

import torch  # noqa: E402

torch.set_num_threads(1)
