# Copyright (c) mmibs contributors. All rights reserved.
"""Raw Cityscapes (``leftImg8bit/``, ``gtFine/``) -> the COCO-panoptic files mmibs reads.

The conversion itself is cityscapesscripts' own ``createPanopticImgs.convert2panoptic`` (labelId
category ids, crowd = thing pixels without an instance id, ``ignoreInEval`` classes dropped to
void). Its output is then fixed for mmdet (``docs/data.md``):

* ``images[].file_name`` becomes the real image path relative to ``leftImg8bit/<split>/``
  (``<city>/<id>_leftImg8bit.png``; cityscapesscripts writes ``<id>_gtFine_leftImg8bit.png``);
* categories are listed things first (they come stuff first); the datasets map labels by name
  anyway, but stock mmdet tools read json order;
* string image ids (``<city>_<seq>_<frame>``) and labelId category ids are kept: the official
  evaluator and the test server match predictions by them.

Output (``out_dir`` defaults to ``<root>/annotations``)::

    <out_dir>/cityscapes_panoptic_<split>.json
    <out_dir>/cityscapes_panoptic_<split>/<id>_gtFine_panoptic.png

Inputs are checked first (every ``*_gtFine_instanceIds.png`` decodes, is 16/32-bit, has its
``*_leftImg8bit.png`` of the same size), so a missing or corrupted file raises an error naming it;
outputs are written in a temporary folder and moved into place only when complete.
"""
import contextlib
import glob
import io
import os
import os.path as osp
import shutil
import tempfile
from typing import Dict, Sequence, Tuple

from mmengine.utils import track_iter_progress
from PIL import Image

from mmibs.utils.atomic_io import atomic_output_dir, atomic_write_json
from ..utils import load_json, things_first

_INSTANCE_SUFFIX = '_gtFine_instanceIds.png'


def check_cityscapes_split(root: str,
                           split: str,
                           show_progress: bool = False) -> Dict[str, Tuple[str, Tuple[int, int]]]:
    """Check the raw files of one split.

    Args:
        root (str): Cityscapes root (holding ``leftImg8bit/`` and ``gtFine/``).
        split (str): ``'train'``, ``'val'`` or ``'test'``.
        show_progress (bool): Show a progress bar. Defaults to False.

    Returns:
        dict: image id -> (city, (width, height)).
    """
    gt_dir = osp.join(root, 'gtFine', split)
    if not osp.isdir(gt_dir):
        raise FileNotFoundError(f'{gt_dir}: folder not found; expected the raw Cityscapes layout '
                                f'<root>/gtFine/<split>/<city>/*{_INSTANCE_SUFFIX}')
    files = sorted(glob.glob(osp.join(gt_dir, '*', '*' + _INSTANCE_SUFFIX)))
    if not files:
        raise FileNotFoundError(f'{gt_dir}: no */*{_INSTANCE_SUFFIX} files')
    images = {}
    for path in track_iter_progress(files) if show_progress else files:
        city = osp.basename(osp.dirname(path))
        image_id = osp.basename(path)[:-len(_INSTANCE_SUFFIX)]
        img_path = osp.join(root, 'leftImg8bit', split, city, f'{image_id}_leftImg8bit.png')
        if not osp.isfile(img_path):
            raise FileNotFoundError(f'{img_path}: image not found (annotated by {path})')
        try:
            with Image.open(path) as ins:
                ins.load()  # decode fully: a truncated PNG fails here, with its name
                mode, size = ins.mode, ins.size
            with Image.open(img_path) as img:
                img_size = img.size
        except (OSError, SyntaxError, ValueError) as err:
            raise ValueError(f'{path}: cannot read the annotation or its image ({err})') from err
        if not mode.startswith('I'):
            raise ValueError(f'{path}: instanceIds must be a 16/32-bit single-channel PNG '
                             f'(ids labelId * 1000 + k), got PIL mode {mode!r}')
        if size != img_size:
            raise ValueError(f'{path}: size {size} differs from its image {img_path} {img_size}')
        images[image_id] = (city, size)
    return images


def _run_cityscapesscripts(gt_root: str, work_dir: str, split: str, verbose: bool) -> None:
    """cityscapesscripts' conversion of one split into ``work_dir``."""
    from cityscapesscripts.preparation.createPanopticImgs import convert2panoptic
    out = contextlib.nullcontext() if verbose else contextlib.redirect_stdout(io.StringIO())
    try:
        with out:
            convert2panoptic(gt_root, work_dir, useTrainId=False, setNames=[split])
    except SystemExit as err:  # cityscapesscripts' printError() exits
        raise RuntimeError(f'cityscapesscripts could not convert {gt_root}/{split}') from err


def fix_panoptic_json(data: dict, images: Dict[str, Tuple[str, Tuple[int, int]]],
                      source: str) -> dict:
    """Make cityscapesscripts' json readable by mmdet (see the module docstring).

    Args:
        data (dict): The json written by ``convert2panoptic``.
        images (dict): image id -> (city, (width, height)), from :func:`check_cityscapes_split`.
        source (str): The json path, for error messages.

    Returns:
        dict: The fixed json.
    """
    for image in data['images']:
        if image['id'] not in images:
            raise ValueError(f'{source}: image id {image["id"]!r} has no checked raw file')
        city, _ = images[image['id']]
        image['file_name'] = f'{city}/{image["id"]}_leftImg8bit.png'
    data['categories'] = things_first(data['categories'])
    return data


def convert_cityscapes_panoptic(root: str,
                                out_dir: str = None,
                                splits: Sequence[str] = ('train', 'val'),
                                show_progress: bool = True) -> Dict[str, dict]:
    """Convert raw Cityscapes splits to mmibs' COCO-panoptic files.

    Args:
        root (str): Cityscapes root (holding ``leftImg8bit/`` and ``gtFine/``).
        out_dir (str, optional): Output folder. Defaults to ``<root>/annotations``.
        splits (Sequence[str]): Splits to convert. Defaults to ``('train', 'val')``.
        show_progress (bool): Show progress (checks and cityscapesscripts' own counter).
            Defaults to True.

    Returns:
        dict: split -> ``dict(ann_file, seg_dir, num_images)`` (absolute paths).
    """
    out_dir = out_dir or osp.join(root, 'annotations')
    os.makedirs(out_dir, exist_ok=True)
    results = {}
    for split in splits:
        images = check_cityscapes_split(root, split, show_progress)
        name = f'cityscapes_panoptic_{split}'
        work_dir = tempfile.mkdtemp(dir=out_dir, prefix=f'.{name}.', suffix='.work')
        try:
            _run_cityscapesscripts(osp.join(root, 'gtFine'), work_dir, split, show_progress)
            raw_json = osp.join(work_dir, name + '.json')
            data = fix_panoptic_json(load_json(raw_json), images, raw_json)
            with atomic_output_dir(osp.join(out_dir, name)) as tmp_dir:
                for entry in os.scandir(osp.join(work_dir, name)):
                    os.replace(entry.path, osp.join(tmp_dir, entry.name))
            atomic_write_json(data, osp.join(out_dir, name + '.json'))
        finally:
            shutil.rmtree(work_dir, ignore_errors=True)
        results[split] = dict(
            ann_file=osp.abspath(osp.join(out_dir, name + '.json')),
            seg_dir=osp.abspath(osp.join(out_dir, name)),
            num_images=len(data['images']))
    return results
