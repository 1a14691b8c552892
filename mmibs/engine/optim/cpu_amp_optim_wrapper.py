# Copyright (c) mmibs contributors. All rights reserved.
"""Mixed-precision training on the CPU (``tools/train.py --amp`` without a GPU).

mmengine 0.10.x's ``AmpOptimWrapper`` asserts a CUDA/NPU/MLU/MUSA device in its constructor and
always builds a ``torch.cuda.amp.GradScaler``, so ``--amp`` cannot run on a CPU. This wrapper is a
plain :class:`~mmengine.optim.OptimWrapper` whose ``optim_context`` adds
``torch.autocast('cpu', dtype=torch.bfloat16)``. bfloat16 has float32's exponent range, so the
loss needs no scaling (there is no gradient underflow to guard against) and backward/step are the
plain ones. The IBS loss leaves autocast itself and computes in float32 (``ibs_loss.py``).
"""
from contextlib import contextmanager
from typing import Union

import torch
from mmengine.optim import OptimWrapper
from torch import nn

from mmibs.registry import OPTIM_WRAPPERS


@OPTIM_WRAPPERS.register_module()
class CPUAmpOptimWrapper(OptimWrapper):
    """Optimizer wrapper running the forward pass under CPU bfloat16 autocast.

    Args:
        dtype (str | torch.dtype): Autocast dtype; only bfloat16 is offered (float16 on the CPU
            would need loss scaling, which this wrapper deliberately does not do).
            Defaults to 'bfloat16'.
        loss_scale (str | float | dict, optional): Accepted for config compatibility with
            ``AmpOptimWrapper`` and ignored: bfloat16 needs no loss scaling. Defaults to None.
        **kwargs: Arguments of :class:`~mmengine.optim.OptimWrapper` (``optimizer``,
            ``accumulative_counts``, ``clip_grad``).
    """

    def __init__(self,
                 dtype: Union[str, torch.dtype] = 'bfloat16',
                 loss_scale: Union[str, float, dict, None] = None,
                 **kwargs) -> None:
        super().__init__(**kwargs)
        if isinstance(dtype, str):
            dtype = getattr(torch, dtype, None)
        if dtype is not torch.bfloat16:
            raise ValueError(f'CPUAmpOptimWrapper: dtype must be bfloat16 (no loss scaling on the '
                             f'CPU), got {dtype!r}')
        self.cast_dtype = dtype

    @contextmanager
    def optim_context(self, model: nn.Module):
        """OptimWrapper's context (gradient accumulation without sync) plus CPU autocast.

        Args:
            model (nn.Module): The training model.
        """
        with super().optim_context(model), torch.autocast('cpu', dtype=self.cast_dtype):
            yield
