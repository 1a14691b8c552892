# Copyright (c) mmibs contributors. All rights reserved.
"""IBSLoss(partner_scope='global') in 2 gloo processes against one process on the whole batch.

Each rank holds 2 of 4 images (rank r: global images 2r, 2r+1). The reference is the plain
single-process ``ibs_loss`` of the concatenated batch with the same (explicit, global) partners;
the sum of the two ranks' losses must equal it, and so must the gradients:
- ``gather_grad=True``: each rank's feature gradient equals the reference gradient of its slice;
- ``gather_grad=False``: it equals the gradient of a reference in which the other rank's
  features are detached.
"""
import os
import socket

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from mmibs.models.losses import IBSLoss, ibs_loss, ibs_partners
from mmibs.models.losses.ibs_dist import gather_mask_features
from mmibs.models.losses.ibs_partner_choice import global_partners

WORLD = 2
B, C, H, W = 2, 8, 6, 7
# global partners of images 0..3: a cross-rank mix, and one image with two partners
PARTNERS = [[3], [2, 0], [1], [0]]


def _inputs():
    gen = torch.Generator().manual_seed(0)
    feats = torch.randn(WORLD * B, C, H, W, generator=gen)
    embs = [torch.randn(n, C, generator=gen) for n in (3, 2, 0, 4)]
    weights = [torch.rand(len(e), generator=gen) for e in embs]
    return feats, embs, weights


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def _worker(rank, port, out_dir):
    os.environ.update(MASTER_ADDR='127.0.0.1', MASTER_PORT=str(port))
    torch.set_num_threads(1)
    dist.init_process_group('gloo', rank=rank, world_size=WORLD)
    try:
        feats, embs, weights = _inputs()
        own = slice(rank * B, rank * B + B)
        for gather_grad in (True, False):
            local_feats = feats[own].clone().requires_grad_()
            local_embs = [e.clone().requires_grad_() for e in embs[own]]
            loss_fn = IBSLoss(partner_scope='global', gather_grad=gather_grad, loss_weight=2.0)
            loss = loss_fn(
                local_embs,
                local_feats,
                weights=weights[own],
                avg_factor=1.0,
                partners=PARTNERS[own])
            loss.backward()
            torch.save(
                dict(
                    loss=loss.detach(),
                    feat_grad=local_feats.grad,
                    emb_grads=[_grad(e) for e in local_embs]),
                os.path.join(out_dir, f'{gather_grad}_{rank}.pth'))
        # a rank without embeddings still joins the backward collective (no hang)
        local_feats = feats[own].clone().requires_grad_()
        empty = [feats.new_zeros(0, C).requires_grad_() for _ in range(B)]
        IBSLoss(
            partner_scope='global', partner='random')(embs[own] if rank else empty,
                                                      local_feats).backward()
        assert local_feats.grad is not None
        # draws and gathering of unequal shapes (rank 1: one image, larger H x W)
        local = torch.randn(1, C, 5, 9) if rank else torch.randn(2, C, 4, 4)
        gathered = gather_mask_features(local, with_grad=False)
        assert [tuple(g.shape) for g in gathered] == [(2, C, 4, 4), (1, C, 5, 9)]
        pairs = global_partners([2, 1], rank, 'all')
        assert pairs == ([[1, 2], [0, 2]] if rank == 0 else [[0, 1]])
    finally:
        dist.destroy_process_group()


def _grad(tensor):
    """A tensor's gradient, zeros where it did not enter the loss."""
    return torch.zeros_like(tensor) if tensor.grad is None else tensor.grad


def _reference(gather_grad, rank):
    """Single-process loss of ``rank``'s images, the other rank's features detached if asked."""
    feats, embs, weights = _inputs()
    feats = feats.requires_grad_()
    embs = [e.requires_grad_() for e in embs]
    src = feats
    if not gather_grad:
        keep = torch.zeros(WORLD * B, 1, 1, 1)
        keep[rank * B:rank * B + B] = 1
        src = feats * keep + (feats * (1 - keep)).detach()
    # only this rank's embeddings: the other images have no embeddings here
    own_embs = [e if rank * B <= i < rank * B + B else e[:0] for i, e in enumerate(embs)]
    own_w = [w if rank * B <= i < rank * B + B else w[:0] for i, w in enumerate(weights)]
    loss = 2.0 * ibs_loss(own_embs, src, PARTNERS, weights=own_w, avg_factor=1.0)
    loss.backward()
    return loss.detach(), feats.grad, [_grad(e) for e in embs]


@pytest.fixture(scope='module')
def dist_results(tmp_path_factory):
    """Run the 2-process part once (spawned processes re-import torch and mmibs: ~10 s)."""
    out = tmp_path_factory.mktemp('ibs_dist')
    mp.spawn(_worker, args=(_free_port(), str(out)), nprocs=WORLD)
    return {g: [torch.load(out / f'{g}_{r}.pth') for r in range(WORLD)] for g in (True, False)}


@pytest.mark.parametrize('gather_grad', [True, False])
def test_global_scope_matches_single_process(dist_results, gather_grad):
    results = dist_results[gather_grad]

    # the whole-batch reference: the sum of the ranks' losses
    feats, embs, weights = _inputs()
    full = 2.0 * ibs_loss(embs, feats, PARTNERS, weights=weights, avg_factor=1.0)
    assert torch.allclose(sum(r['loss'] for r in results), full, rtol=1e-5, atol=1e-7)

    feat_grad_sum = torch.zeros(WORLD * B, C, H, W)
    for rank in range(WORLD):
        ref_loss, ref_feat_grad, ref_emb_grads = _reference(gather_grad, rank)
        assert torch.allclose(results[rank]['loss'], ref_loss, rtol=1e-5, atol=1e-7)
        for k in range(B):
            assert torch.allclose(
                results[rank]['emb_grads'][k], ref_emb_grads[rank * B + k], rtol=1e-4, atol=1e-7)
        feat_grad_sum += ref_feat_grad
        if not gather_grad:
            # only the owner's own loss reaches its features
            own = ref_feat_grad[rank * B:rank * B + B]
            assert torch.allclose(results[rank]['feat_grad'], own, rtol=1e-4, atol=1e-7)
    if gather_grad:
        # every rank's loss reaches every rank's features: the whole-batch gradient
        for rank in range(WORLD):
            assert torch.allclose(
                results[rank]['feat_grad'],
                feat_grad_sum[rank * B:rank * B + B],
                rtol=1e-4,
                atol=1e-7)
        # and it differs from the detached variant (the test can tell the two apart)
        _, detached, _ = _reference(False, 0)
        assert not torch.allclose(results[0]['feat_grad'], detached[:B])


def test_global_partners_single_process_rules():
    assert global_partners([2, 2], 1, 'pair') == [[3], [2]]
    assert global_partners([2, 2], 0, 'all') == [[1, 2, 3], [0, 2, 3]]
    assert global_partners([1], 0, 'random') == [[]]
    torch.manual_seed(0)
    for _ in range(20):
        for g, part in zip((2, 3), global_partners([2, 2], 1, 'random')):
            assert len(part) == 1 and part[0] != g and 0 <= part[0] < 4
    with pytest.raises(ValueError, match='even global batch'):
        global_partners([2, 1], 0, 'pair')
    with pytest.raises(ValueError, match='partner_scope'):
        IBSLoss(partner_scope='world')


@pytest.mark.parametrize('mode', ['pair', 'random', 'all'])
@pytest.mark.parametrize('batch_size', [1, 4])
def test_global_partners_of_one_rank_are_ibs_partners(mode, batch_size):
    """One rule for both scopes: a single rank's global partners are its local partners, with
    the same draw from torch's RNG."""
    torch.manual_seed(4)
    local = ibs_partners(batch_size, mode)
    torch.manual_seed(4)
    assert global_partners([batch_size], 0, mode) == local


def test_global_scope_without_process_group_is_per_process():
    feats, embs, weights = _inputs()
    torch.manual_seed(0)
    a = IBSLoss(partner='pair', partner_scope='global')(embs, feats, weights=weights)
    b = ibs_loss(embs, feats, [[1], [0], [3], [2]], weights=weights)
    assert torch.allclose(a, b)
