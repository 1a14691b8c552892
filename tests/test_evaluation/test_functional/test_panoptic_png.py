# Copyright (c) mmibs contributors. All rights reserved.
"""PNG decoding (imgread and the OpenCV fallback) and the run-length overlap counting."""
import os

import cv2
import numpy as np
import pytest
from PIL import Image

from mmibs.evaluation import evaluate_panoptic
from mmibs.evaluation.functional import (IdRuns, decode_panoptic_png, id2rgb, panoptic_png,
                                         png_decoder_available, read_panoptic_png,
                                         read_panoptic_runs, segment_overlaps)
from projects.toy_cityscapes.synthetic import write_panoptic_pairs

DECODERS = [
    'cv2',
    pytest.param(
        'imgread',
        marks=pytest.mark.skipif(
            not png_decoder_available('imgread'), reason='imgread is not installed here'))
]


def flat_ids(rng, height=24, width=40, num_ids=7, high=1 << 24):
    """A piecewise-constant id map (rows of blocks), as panoptic maps are."""
    palette = rng.integers(1, high, num_ids)
    blocks = rng.integers(0, num_ids, (height // 4, width // 8))
    ids = palette[np.kron(blocks, np.ones((4, 8), dtype=np.int64))]
    ids[rng.random(ids.shape) < 0.02] = 0  # a few VOID pixels
    return ids


def write_variants(tmp_path, ids):
    """The same ids as PNGs of each writer / colour type a dataset may hold."""
    rgb = id2rgb(ids)
    files = {}
    files['pil_rgb'] = tmp_path / 'pil_rgb.png'
    Image.fromarray(rgb).save(files['pil_rgb'])
    files['pil_rgba'] = tmp_path / 'pil_rgba.png'
    Image.fromarray(rgb).convert('RGBA').save(files['pil_rgba'])
    files['cv2_rgb'] = tmp_path / 'cv2_rgb.png'
    cv2.imwrite(str(files['cv2_rgb']), rgb[..., ::-1])
    files['cv2_rgb_level9'] = tmp_path / 'cv2_rgb_level9.png'
    cv2.imwrite(str(files['cv2_rgb_level9']), rgb[..., ::-1], [cv2.IMWRITE_PNG_COMPRESSION, 9])
    files['pil_palette'] = tmp_path / 'pil_palette.png'
    colours, index = np.unique(rgb.reshape(-1, 3), axis=0, return_inverse=True)
    palette = Image.fromarray(index.reshape(ids.shape).astype(np.uint8), mode='P')
    palette.putpalette(colours.astype(np.uint8).ravel().tolist())
    palette.save(files['pil_palette'])
    return files


@pytest.mark.parametrize('decoder', ['auto'] + DECODERS)
def test_decoders_give_the_ids(tmp_path, decoder):
    ids = flat_ids(np.random.default_rng(0))
    for name, path in write_variants(tmp_path, ids).items():
        got = read_panoptic_png(str(path), decoder=decoder)
        assert got.dtype == np.uint32 and got.shape == ids.shape, name
        np.testing.assert_array_equal(got, ids, err_msg=name)
        runs = read_panoptic_runs(str(path), decoder=decoder)
        np.testing.assert_array_equal(runs.to_map(), ids, err_msg=name)
        np.testing.assert_array_equal(runs.starts, IdRuns.from_map(ids).starts, err_msg=name)


@pytest.mark.parametrize('decoder', DECODERS)
def test_gray_pngs_keep_their_values(tmp_path, decoder):
    """8/16-bit gray id maps go to OpenCV with any decoder (imgread would make them RGB)."""
    ids16 = flat_ids(np.random.default_rng(1), high=1 << 16).astype(np.uint16)
    cv2.imwrite(str(tmp_path / 'gray16.png'), ids16)
    got = read_panoptic_png(str(tmp_path / 'gray16.png'), decoder=decoder)
    assert got.dtype == np.uint16
    np.testing.assert_array_equal(got, ids16)
    np.testing.assert_array_equal(
        read_panoptic_runs(str(tmp_path / 'gray16.png'), decoder=decoder).to_map(), ids16)
    ids8 = (ids16 % 251).astype(np.uint8)
    Image.fromarray(ids8).save(tmp_path / 'gray8.png')
    got = read_panoptic_png(str(tmp_path / 'gray8.png'), decoder=decoder)
    assert got.dtype == np.uint8
    np.testing.assert_array_equal(got, ids8)


def test_png_header(tmp_path):
    ids = flat_ids(np.random.default_rng(2))
    path = write_variants(tmp_path, ids)['pil_rgba']
    data = path.read_bytes()
    assert panoptic_png.png_header(data) == (ids.shape[1], ids.shape[0], 8, 6)
    assert panoptic_png.png_header(b'GIF89a' + data[6:]) is None
    assert panoptic_png.png_header(data[:20]) is None


def test_without_imgread_falls_back_to_cv2(tmp_path, monkeypatch):
    ids = flat_ids(np.random.default_rng(3))
    path = str(write_variants(tmp_path, ids)['pil_rgb'])
    monkeypatch.setattr(panoptic_png, 'imgread', None)
    assert not png_decoder_available('imgread') and png_decoder_available('auto')
    np.testing.assert_array_equal(read_panoptic_png(path), ids)
    with pytest.raises(ImportError, match='imgread'):
        read_panoptic_png(path, decoder='imgread')
    with pytest.raises(ValueError, match='png decoder must be one of'):
        png_decoder_available('pillow')


@pytest.mark.parametrize('decoder', ['auto'] + DECODERS)
def test_bad_files_are_named(tmp_path, decoder):
    ids = flat_ids(np.random.default_rng(4))
    data = write_variants(tmp_path, ids)['pil_rgb'].read_bytes()
    (tmp_path / 'cut.png').write_bytes(data[:60])
    with pytest.raises(ValueError, match='cut.png'):
        read_panoptic_png(str(tmp_path / 'cut.png'), decoder=decoder)
    (tmp_path / 'text.png').write_bytes(b'not an image at all')
    with pytest.raises(ValueError, match='text.png'):
        read_panoptic_png(str(tmp_path / 'text.png'), decoder=decoder)
    with pytest.raises(FileNotFoundError, match='missing.png'):
        read_panoptic_png(str(tmp_path / 'missing.png'), decoder=decoder)
    with pytest.raises(ValueError, match='<bytes>'):
        decode_panoptic_png(data[:60], decoder=decoder)


def test_id_runs_round_trip_and_overlaps():
    rng = np.random.default_rng(5)
    for shape in [(24, 40), (1, 1), (1, 7), (5, 1), (0, 3)]:
        gt = flat_ids(rng)[:shape[0], :shape[1]].astype(np.uint32)
        pred = np.roll(gt, 3, axis=1)
        pred[:, :2] = 0
        runs = IdRuns.from_map(gt)
        np.testing.assert_array_equal(runs.to_map(), gt)
        assert runs.to_map().dtype == gt.dtype and runs.shape == gt.shape
        assert runs.nbytes <= max(16, gt.nbytes * 4)
        gt_seg = np.unique(gt[gt > 0])[:-1].astype(np.int64)  # one gt id left out: "unknown"
        pred_seg = np.unique(pred[pred > 0]).astype(np.int64)
        counts = segment_overlaps(gt, gt_seg, pred, pred_seg)
        pred_runs = IdRuns.from_map(pred)
        for gt_side, pred_side in ((runs, pred), (gt, pred_runs), (runs, pred_runs)):
            np.testing.assert_array_equal(
                segment_overlaps(gt_side, gt_seg, pred_side, pred_seg), counts)
        # naive reference: pixel by pixel
        gt_index = {0: 0, **{int(i): k + 1 for k, i in enumerate(gt_seg)}}
        pred_index = {0: 0, **{int(i): k + 1 for k, i in enumerate(pred_seg)}}
        expected = np.zeros((len(gt_seg) + 2, len(pred_seg) + 2), dtype=np.int64)
        for g, p in zip(gt.ravel().tolist(), pred.ravel().tolist()):
            expected[gt_index.get(g, len(gt_seg) + 1), pred_index.get(p, len(pred_seg) + 1)] += 1
        np.testing.assert_array_equal(counts, expected)
        assert counts.dtype == np.int64 and counts.sum() == gt.size
    with pytest.raises(ValueError, match='differ in size'):
        segment_overlaps(IdRuns.from_map(gt), gt_seg, pred[:, :1], pred_seg)


@pytest.mark.parametrize('decoder', DECODERS)
def test_evaluation_does_not_depend_on_decoder_or_threads(tmp_path, decoder):
    paths = write_panoptic_pairs(
        str(tmp_path), num_images=3, height=40, width=80, seed=9, num_things=10)
    reference = evaluate_panoptic(**paths, nproc=1, show_progress=False, decoder='cv2')
    for nproc in (1, 2):
        results = evaluate_panoptic(**paths, nproc=nproc, show_progress=False, decoder=decoder)
        for key, value in reference.items():
            if key != 'time':
                assert results[key] == value, key  # identical, not only close


def test_reused_buffers_do_not_leak_between_images(tmp_path, monkeypatch):
    """read_panoptic_runs reuses its RGBA buffers: images of two sizes, read in turn, stay right."""
    monkeypatch.setattr(panoptic_png, '_free_buffers', [])
    rng = np.random.default_rng(6)
    small, large = flat_ids(rng, 16, 24), flat_ids(rng, 24, 40)
    paths = {}
    for name, ids in (('small', small), ('large', large)):
        paths[name] = str(tmp_path / f'{name}.png')
        Image.fromarray(id2rgb(ids)).save(paths[name])
    for name in ['small', 'large', 'small', 'small', 'large'] * 2:
        expected = small if name == 'small' else large
        np.testing.assert_array_equal(read_panoptic_runs(paths[name]).to_map(), expected)
    kept = panoptic_png._free_buffers
    assert 1 <= len(kept) <= (os.cpu_count() or 1)
    assert {buffer.shape for buffer in kept} <= {(16, 24, 4), (24, 40, 4)}
