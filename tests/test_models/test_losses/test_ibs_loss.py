# Copyright (c) mmibs contributors. All rights reserved.
"""IBS loss against a naive reference: explicit loops over images, embeddings and pixels/points,
and the focal formula written out with its general target (``docs/method.md``)."""
import math

import pytest
import torch
from mmdet.models.losses.focal_loss import py_sigmoid_focal_loss
from mmdet.models.utils import get_uncertain_point_coords_with_randomness

import mmibs  # noqa: F401  (registers IBSLoss into mmdet's MODELS)
from mmibs.models.losses import focal_loss_to_zero, ibs_partners
from mmibs.models.losses.focal_to_zero import _DenseFocalToZeroMean
from mmibs.registry import MODELS

ALPHA, GAMMA = 0.25, 2.0


# ------------------------------------------------------------------------------------------------
# naive reference
def naive_focal(z: torch.Tensor, target: float = 0.0) -> torch.Tensor:
    """alpha_t * (1 - p_t) ** gamma * BCE(z, t), written out for a scalar target."""
    p = torch.sigmoid(z)
    p_t = p * target + (1 - p) * (1 - target)
    alpha_t = ALPHA * target + (1 - ALPHA) * (1 - target)
    return -alpha_t * (1 - p_t)**GAMMA * torch.log(p_t)


def naive_logit_map(e: torch.Tensor, feat: torch.Tensor) -> torch.Tensor:
    """<e, F(x)> for every pixel, one channel at a time."""
    out = torch.zeros(feat.shape[1:], dtype=feat.dtype)
    for c in range(feat.shape[0]):
        out = out + e[c] * feat[c]
    return out


def naive_bilinear(logit_map: torch.Tensor, coords: torch.Tensor) -> torch.Tensor:
    """Bilinear value at points in [0, 1]^2 (x, y), pixel centres at (k + 0.5) / size, zero
    outside the map (grid_sample with align_corners=False and zero padding)."""
    h, w = logit_map.shape
    values = []
    for x, y in coords.tolist():
        px, py = x * w - 0.5, y * h - 0.5
        x0, y0 = math.floor(px), math.floor(py)
        val = logit_map.new_zeros(())
        for xi, wx in ((x0, x0 + 1 - px), (x0 + 1, px - x0)):
            for yi, wy in ((y0, y0 + 1 - py), (y0 + 1, py - y0)):
                if 0 <= xi < w and 0 <= yi < h:
                    val = val + wx * wy * logit_map[yi, xi]
        values.append(val)
    return torch.stack(values)


def naive_partners(batch_size, mode):
    """The documented partner rules, re-drawn from torch's RNG the documented way."""
    if batch_size == 1:
        return [[]]
    if mode == 'pair':
        return [[i + 1 if i % 2 == 0 else i - 1] for i in range(batch_size)]
    if mode == 'all':
        return [[j for j in range(batch_size) if j != i] for i in range(batch_size)]
    r = torch.randint(0, batch_size - 1, (batch_size, ))
    return [[int(r[i]) if int(r[i]) < i else int(r[i]) + 1] for i in range(batch_size)]


def naive_ibs(embeddings,
              feats,
              mode,
              weights=None,
              avg_factor=None,
              num_points=None,
              block_rows=None):
    """The IBS value with python loops (float64). With ``num_points`` the points are drawn per
    (image, partner, block of embeddings) with mmdet's uncertainty sampler, as the spec says."""
    partners = naive_partners(feats.shape[0], mode)
    total = torch.zeros((), dtype=torch.float64)
    count = 0
    for i, emb in enumerate(embeddings):
        count += emb.shape[0]
        if emb.shape[0] == 0 or not partners[i]:
            continue
        per_partner = []
        for p in partners[i]:
            maps = [naive_logit_map(e.double(), feats[p].double()) for e in emb]
            if num_points is None:
                per_partner.append([naive_focal(m).mean() for m in maps])
                continue
            rows = block_rows or len(maps)
            losses = []
            for start in range(0, len(maps), rows):
                block = torch.stack(maps[start:start + rows]).float()[:, None]
                coords = get_uncertain_point_coords_with_randomness(block, None, num_points, 3.0,
                                                                    0.75)
                for m, c in zip(maps[start:start + rows], coords):
                    losses.append(naive_focal(naive_bilinear(m, c.double())).mean())
            per_partner.append(losses)
        for j in range(emb.shape[0]):
            value = sum(pp[j] for pp in per_partner) / len(per_partner)
            w = 1.0 if weights is None else weights[i][j].double()
            total = total + w * value
    denom = count if avg_factor is None else avg_factor
    return total / max(denom, 1)


def grad_of(t: torch.Tensor) -> torch.Tensor:
    """The gradient, zeros when autograd never reached the tensor (an image without things)."""
    return torch.zeros_like(t) if t.grad is None else t.grad


def make_inputs(seed, counts=(3, 0, 2, 4), channels=6, size=(5, 7), dtype=torch.float32):
    gen = torch.Generator().manual_seed(seed)
    embeddings = [
        torch.randn(n, channels, generator=gen, dtype=dtype).requires_grad_() for n in counts
    ]
    feats = torch.randn(len(counts), channels, *size, generator=gen, dtype=dtype)
    weights = [torch.rand(n, generator=gen, dtype=dtype) + 0.5 for n in counts]
    return embeddings, feats.requires_grad_(), weights


# ------------------------------------------------------------------------------------------------
def test_registry_and_repr():
    loss = MODELS.build(dict(type='IBSLoss', partner='pair', num_points=None, loss_weight=1.0))
    text = repr(loss)
    for field in ('partner=', 'num_points=', 'oversample_ratio=', 'importance_sample_ratio=',
                  'alpha=', 'gamma=', 'max_chunk_elements=', 'loss_weight='):
        assert field in text


def test_partners():
    assert ibs_partners(4, 'pair') == [[1], [0], [3], [2]]
    assert ibs_partners(3, 'all') == [[1, 2], [0, 2], [0, 1]]
    for mode in ('pair', 'random', 'all'):
        assert ibs_partners(1, mode) == [[]]
    with pytest.raises(ValueError, match='batch size 3'):
        ibs_partners(3, 'pair')
    with pytest.raises(ValueError, match='mode'):
        ibs_partners(2, 'nearest')
    # random: reproducible under a seed, never the image itself, uniform over the others
    torch.manual_seed(3)
    first = ibs_partners(4, 'random')
    torch.manual_seed(3)
    assert ibs_partners(4, 'random') == first
    counts = torch.zeros(4, 4)
    for _ in range(3000):
        for i, (j, ) in enumerate(ibs_partners(4, 'random')):
            counts[i, j] += 1
    assert counts.diagonal().sum() == 0
    off_diag = counts[~torch.eye(4, dtype=torch.bool)]
    assert (off_diag - 1000).abs().max() < 120  # ~5.8 standard deviations of Binomial(3000, 1/3)


def test_focal_to_zero_matches_mmdet():
    z = torch.linspace(-30, 30, 241, dtype=torch.float64)
    expected = py_sigmoid_focal_loss(z[:, None], torch.zeros(241, 1), reduction='none')[:, 0]
    torch.testing.assert_close(focal_loss_to_zero(z), expected)
    torch.testing.assert_close(focal_loss_to_zero(z[100:140]), naive_focal(z[100:140]))


def test_dense_function_gradcheck():
    gen = torch.Generator().manual_seed(0)
    emb = torch.randn(5, 4, generator=gen, dtype=torch.float64, requires_grad=True)
    feat = torch.randn(4, 18, generator=gen, dtype=torch.float64, requires_grad=True)
    for block_rows in (2, 5):
        assert torch.autograd.gradcheck(
            lambda a, b, rows=block_rows: _DenseFocalToZeroMean.apply(a, b, ALPHA, GAMMA, rows),
            (emb, feat))


@pytest.mark.parametrize('mode', ['pair', 'random', 'all'])
@pytest.mark.parametrize('use_weights', [False, True])
@pytest.mark.parametrize('max_chunk_elements', [2**24, 40])
def test_dense_matches_naive(mode, use_weights, max_chunk_elements):
    embeddings, feats, weights = make_inputs(1)
    weights = weights if use_weights else None
    loss = MODELS.build(
        dict(type='IBSLoss', partner=mode, loss_weight=2.5, max_chunk_elements=max_chunk_elements))
    torch.manual_seed(7)
    value = loss(embeddings, feats, weights=weights)
    value.backward()
    grads = [grad_of(e).clone() for e in embeddings] + [feats.grad.clone()]

    ref_emb = [e.detach().double().requires_grad_() for e in embeddings]
    ref_feat = feats.detach().double().requires_grad_()
    torch.manual_seed(7)
    expected = 2.5 * naive_ibs(ref_emb, ref_feat, mode, weights)
    expected.backward()
    assert value.dtype == torch.float32
    torch.testing.assert_close(value.double(), expected, rtol=1e-5, atol=1e-7)
    for got, ref in zip(grads, [grad_of(e) for e in ref_emb] + [ref_feat.grad]):
        torch.testing.assert_close(got.double(), ref, rtol=1e-4, atol=1e-7)


@pytest.mark.parametrize('mode', ['pair', 'random', 'all'])
@pytest.mark.parametrize('use_weights', [False, True])
def test_point_sampled_matches_naive(mode, use_weights):
    embeddings, feats, weights = make_inputs(2, size=(6, 8))
    weights = weights if use_weights else None
    loss = MODELS.build(dict(type='IBSLoss', partner=mode, num_points=12, loss_weight=0.5))
    torch.manual_seed(11)
    value = loss(embeddings, feats, weights=weights, avg_factor=5)
    value.backward()
    torch.manual_seed(11)
    ref_emb = [e.detach().double().requires_grad_() for e in embeddings]
    expected = 0.5 * naive_ibs(ref_emb, feats.detach(), mode, weights, avg_factor=5, num_points=12)
    expected.backward()
    torch.testing.assert_close(value.double(), expected, rtol=1e-5, atol=1e-7)
    for got, ref in zip(embeddings, ref_emb):
        torch.testing.assert_close(grad_of(got).double(), grad_of(ref), rtol=1e-4, atol=1e-7)


def test_point_sampled_chunked_matches_naive():
    """Blocks of 2 embeddings (2 * 48 logits <= 100): each block is checkpointed and draws its
    own points; value and gradients still equal the naive loops."""
    embeddings, feats, _ = make_inputs(4, counts=(5, 3), size=(6, 8))
    loss = MODELS.build(dict(type='IBSLoss', num_points=9, max_chunk_elements=100))
    torch.manual_seed(5)
    value = loss(embeddings, feats)
    value.backward()
    torch.manual_seed(5)
    ref_emb = [e.detach().double().requires_grad_() for e in embeddings]
    ref_feat = feats.detach().double().requires_grad_()
    expected = naive_ibs(ref_emb, ref_feat, 'pair', num_points=9, block_rows=2)
    expected.backward()
    torch.testing.assert_close(value.double(), expected, rtol=1e-5, atol=1e-7)
    for got, ref in zip(embeddings + [feats], ref_emb + [ref_feat]):
        torch.testing.assert_close(got.grad.double(), ref.grad, rtol=1e-4, atol=1e-7)


@pytest.mark.parametrize('num_points', [None, 10])
def test_gradients_reach_embeddings_and_partner_features_only(num_points):
    embeddings, feats, _ = make_inputs(3, counts=(0, 0, 3, 0))
    loss = MODELS.build(dict(type='IBSLoss', partner='pair', num_points=num_points))
    loss(embeddings, feats).backward()
    # image 2's partner is image 3 (2 ^ 1): only its features receive gradient
    assert feats.grad[3].abs().sum() > 0
    assert torch.equal(feats.grad[[0, 1, 2]], torch.zeros_like(feats.grad[[0, 1, 2]]))
    assert embeddings[2].grad.abs().sum() > 0
    for i in (0, 1, 3):
        assert torch.equal(grad_of(embeddings[i]), torch.zeros_like(embeddings[i]))


def test_weight_gradients_are_the_per_embedding_terms():
    embeddings, feats, weights = make_inputs(6, counts=(2, 3))
    weights = [w.requires_grad_() for w in weights]
    value = MODELS.build(dict(type='IBSLoss'))(embeddings, feats, weights=weights)
    value.backward()
    for i, p in ((0, 1), (1, 0)):
        expected = torch.stack([
            naive_focal(naive_logit_map(e.detach().double(), feats[p].detach().double())).mean()
            for e in embeddings[i]
        ]) / 5
        torch.testing.assert_close(weights[i].grad.double(), expected, rtol=1e-5, atol=1e-8)


@pytest.mark.parametrize('mode', ['pair', 'random', 'all'])
@pytest.mark.parametrize('num_points', [None, 10])
def test_exact_zero_in_graph(mode, num_points):
    loss = MODELS.build(dict(type='IBSLoss', partner=mode, num_points=num_points))
    # batch of 1: no other image
    embeddings, feats, _ = make_inputs(0, counts=(3, ))
    value = loss(embeddings, feats)
    assert value.item() == 0.0 and value.requires_grad and value.grad_fn is not None
    value.backward()
    assert torch.equal(feats.grad, torch.zeros_like(feats))
    assert torch.equal(embeddings[0].grad, torch.zeros_like(embeddings[0]))
    # no thing embeddings in any image (e.g. images with only stuff)
    embeddings, feats, _ = make_inputs(0, counts=(0, 0))
    value = loss(embeddings, feats, avg_factor=0)
    assert value.item() == 0.0 and value.grad_fn is not None
    value.backward()
    assert torch.equal(feats.grad, torch.zeros_like(feats))


def test_avg_factor_and_loss_weight():
    embeddings, feats, _ = make_inputs(8, counts=(2, 2))
    base = MODELS.build(dict(type='IBSLoss'))(embeddings, feats)
    scaled = MODELS.build(dict(type='IBSLoss', loss_weight=3.0))(
        embeddings, feats, avg_factor=torch.tensor(8.0))
    torch.testing.assert_close(scaled, base * 3.0 * 4 / 8)
    # avg_factor below 1 is clamped to 1
    clamped = MODELS.build(dict(type='IBSLoss'))(embeddings, feats, avg_factor=0.25)
    torch.testing.assert_close(clamped, base * 4)
    # explicit partners override the mode
    explicit = MODELS.build(dict(type='IBSLoss', partner='all'))(
        embeddings, feats, partners=[[1], [0]])
    torch.testing.assert_close(explicit, base)


@pytest.mark.parametrize('dtype', [torch.float16, torch.bfloat16])
@pytest.mark.parametrize('num_points', [None, 10])
def test_half_precision_autocast_is_float32(dtype, num_points):
    embeddings, feats, _ = make_inputs(9, counts=(3, 2), dtype=dtype)
    loss = MODELS.build(dict(type='IBSLoss', num_points=num_points))
    torch.manual_seed(0)
    with torch.autocast('cpu', dtype=dtype):
        value = loss(embeddings, feats)
    value.backward()
    assert value.dtype == torch.float32
    assert embeddings[0].grad.dtype == dtype and feats.grad.dtype == dtype
    torch.manual_seed(0)
    ref_emb = [e.detach().double() for e in embeddings]
    expected = naive_ibs(ref_emb, feats.detach().double(), 'pair', num_points=num_points)
    torch.testing.assert_close(value.double(), expected, rtol=1e-5, atol=1e-7)


def test_dense_path_saves_no_logits():
    """The dense path keeps only its inputs for backward, never an (N, H*W) block."""
    embeddings, feats, _ = make_inputs(10, counts=(40, 40), channels=4, size=(16, 16))
    saved = []

    def pack(t):
        saved.append(t.numel())
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        value = MODELS.build(dict(type='IBSLoss', max_chunk_elements=1024))(embeddings, feats)
    value.backward()
    assert max(saved) <= feats.numel() // 2  # one image's features; logits would be 40 * 256
    assert 40 * 256 not in saved


def test_bad_inputs():
    embeddings, feats, weights = make_inputs(0, counts=(2, 1))
    loss = MODELS.build(dict(type='IBSLoss'))
    with pytest.raises(ValueError, match=r'mask_features'):
        loss(embeddings, feats[0])
    with pytest.raises(ValueError, match=r'embeddings\[1\]'):
        loss([embeddings[0], embeddings[1][:, :3]], feats)
    with pytest.raises(ValueError, match='one \\(N_i, C\\) tensor per image'):
        loss(embeddings[:1], feats)
    with pytest.raises(ValueError, match=r'weights\[0\]'):
        loss(embeddings, feats, weights=[weights[0][:1], weights[1]])
    with pytest.raises(ValueError, match=r'partners\[0\]'):
        loss(embeddings, feats, partners=[[0], [0]])
    with pytest.raises(ValueError, match='batch size 3'):
        loss(embeddings + [embeddings[1]], torch.cat([feats, feats[:1]]))
    with pytest.raises(ValueError, match='partner'):
        MODELS.build(dict(type='IBSLoss', partner='nearest'))
    with pytest.raises(ValueError, match='num_points'):
        MODELS.build(dict(type='IBSLoss', num_points=0))
