# Copyright (c) mmibs contributors. All rights reserved.
"""Sigmoid focal loss against an all-zero target, the per-mask term of the IBS loss.

``FL(z, t) = alpha_t * (1 - p_t) ** gamma * BCEWithLogits(z, t)``, ``p = sigmoid(z)``; IBS
supervises every partner mask towards "empty", so ``t = 0`` everywhere (``docs/method.md``).
This module holds the element-wise term, its derivative and the memory-saving dense mean over all
pixels of a partner mask; the mean over sampled points is in
:mod:`~mmibs.models.losses.focal_to_zero_points`.

Shape shorthand: N embeddings, C channels, H x W mask-feature size, n rows of one block.
"""
import torch
import torch.nn.functional as F
from torch import Tensor


def focal_loss_to_zero(logits: Tensor, alpha: float = 0.25, gamma: float = 2.0) -> Tensor:
    """Element-wise sigmoid focal loss against an all-zero target.

    With target 0, ``alpha_t = 1 - alpha``, ``1 - p_t = p`` and ``BCE(z, 0) = softplus(z)``, so
    ``FL(z, 0) = (1 - alpha) * sigmoid(z) ** gamma * softplus(z)``; softplus keeps large logits
    finite where ``-log(1 - p)`` would overflow. Equal to mmdet's ``py_sigmoid_focal_loss`` with
    a zero target and ``reduction='none'``, without building the target.

    Args:
        logits (Tensor): Mask logits z, any shape.
        alpha (float): Focal alpha (weight of the positive class). Defaults to 0.25.
        gamma (float): Focal gamma. Defaults to 2.0.

    Returns:
        Tensor: The loss, same shape as ``logits``.
    """
    return (1 - alpha) * logits.sigmoid().pow(gamma) * F.softplus(logits)


def focal_loss_to_zero_grad(logits: Tensor, alpha: float = 0.25, gamma: float = 2.0) -> Tensor:
    """Derivative of :func:`focal_loss_to_zero` with respect to the logits.

    ``d/dz [(1 - a) p^g s] = (1 - a) p^g (g (1 - p) s + p)``, using ``dp/dz = p (1 - p)`` and
    ``ds/dz = p`` for ``p = sigmoid(z)``, ``s = softplus(z)``.

    Args:
        logits (Tensor): Mask logits z, any shape.
        alpha (float): Focal alpha. Defaults to 0.25.
        gamma (float): Focal gamma. Defaults to 2.0.

    Returns:
        Tensor: The derivative, same shape as ``logits``.
    """
    prob = logits.sigmoid()
    return (1 - alpha) * prob.pow(gamma) * (gamma * (1 - prob) * F.softplus(logits) + prob)


class _DenseFocalToZeroMean(torch.autograd.Function):
    """Per-embedding mean over all pixels of ``FL(<e, F(x)>, 0)``, block by block.

    A custom autograd function, not plain autograd, because autograd would keep the (N, H*W)
    logits and several same-sized intermediates of the focal term alive until backward. Here
    forward and backward both walk over blocks of ``block_rows`` embeddings, recompute the block's
    logits and keep only the inputs, so no more than one block of logits exists at a time at the
    cost of one extra matrix product in backward. Double backward is not supported.

    Inputs of :meth:`forward`: embeddings (N, C), features (C, H*W), alpha, gamma and
    block_rows; output: the mean per embedding, shape (N, ).
    """

    @staticmethod
    def forward(ctx, embeddings: Tensor, features: Tensor, alpha: float, gamma: float,
                block_rows: int) -> Tensor:
        num_pixels = features.shape[1]
        out = embeddings.new_empty(embeddings.shape[0])
        for start in range(0, embeddings.shape[0], block_rows):
            stop = start + block_rows
            # shape (n, C) @ (C, H*W) -> (n, H*W)
            logits = embeddings[start:stop] @ features
            # shape (n, H*W) -> (n, )
            out[start:stop] = focal_loss_to_zero(logits, alpha, gamma).sum(dim=1) / num_pixels
        ctx.save_for_backward(embeddings, features)
        ctx.alpha, ctx.gamma, ctx.block_rows = alpha, gamma, block_rows
        return out

    @staticmethod
    def backward(ctx, grad_out: Tensor):
        embeddings, features = ctx.saved_tensors
        need_emb, need_feat = ctx.needs_input_grad[:2]
        grad_emb = torch.zeros_like(embeddings) if need_emb else None
        grad_feat = torch.zeros_like(features) if need_feat else None
        num_pixels = features.shape[1]
        for start in range(0, embeddings.shape[0], ctx.block_rows):
            stop = start + ctx.block_rows
            block = embeddings[start:stop]
            # shape (n, C) @ (C, H*W) -> (n, H*W)
            logits = block @ features
            grad_logits = focal_loss_to_zero_grad(logits, ctx.alpha, ctx.gamma)
            # shape (n, H*W) * (n, 1) -> (n, H*W)
            grad_logits *= (grad_out[start:stop] / num_pixels)[:, None]
            if need_emb:
                # shape (n, H*W) @ (H*W, C) -> (n, C)
                grad_emb[start:stop] = grad_logits @ features.t()
            if need_feat:
                # shape (C, n) @ (n, H*W) -> (C, H*W)
                grad_feat.addmm_(block.t(), grad_logits)
        return grad_emb, grad_feat, None, None, None


def dense_focal_to_zero_mean(embeddings: Tensor,
                             features: Tensor,
                             alpha: float = 0.25,
                             gamma: float = 2.0,
                             max_chunk_elements: int = 2**24) -> Tensor:
    """Mean over all pixels of the focal-to-zero loss of each embedding's partner mask.

    The logits ``<e_j, F(x)>`` are computed in blocks of at most ``max_chunk_elements`` values and
    never kept for backward (:class:`_DenseFocalToZeroMean`).

    Args:
        embeddings (Tensor): Embeddings e, shape (N, C).
        features (Tensor): Mask features of one partner image, shape (C, H, W).
        alpha (float): Focal alpha. Defaults to 0.25.
        gamma (float): Focal gamma. Defaults to 2.0.
        max_chunk_elements (int): Most logits computed at once (blocks of embeddings).
            Defaults to 2**24.

    Returns:
        Tensor: ``mean_x FL(<e_j, F(x)>, 0)`` per embedding, shape (N, ).
    """
    # shape (C, H, W) -> (C, H*W)
    features = features.flatten(1)
    block_rows = max(1, max_chunk_elements // max(features.shape[1], 1))
    return _DenseFocalToZeroMean.apply(embeddings, features, alpha, gamma, block_rows)
