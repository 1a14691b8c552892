# Copyright (c) mmibs contributors. All rights reserved.
"""What the demo and the study share: running the command-line tools, and how they share cores.

Every step runs a user-facing tool (``tools/train.py``, ``tools/test.py``, the converters, the
figures) in a subprocess from the repository root, so the experiments exercise the real path.

Runs side by side: ``jobs`` runs at a time, each with ``OMP_NUM_THREADS`` = cores / jobs (one
thread each with the default 2 jobs on 2 cores). On 2 cores two one-thread runs do 1.5x the
iterations per second of one two-thread run, and a run's numbers depend on its thread count, so
the demo's runs are the study's only when both share the cores the same way.
"""
import glob
import json
import os
import os.path as osp
import subprocess
import sys
import time
from collections import deque
from concurrent.futures import ThreadPoolExecutor, as_completed
from typing import Any, Callable, Deque, Dict, List, Optional, Sequence, Tuple

#: The repository root: every tool runs from there.
REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
#: This project's folder, relative to the repository root.
PROJECT = osp.join('projects', 'toy_cityscapes')
#: The experiments' configs, relative to the repository root.
CONFIG_DIR = osp.join(PROJECT, 'configs')
#: The measured results shipped with the project.
RESULTS_DIR = osp.join(REPO, 'docs', 'results')


def cpu_cores() -> int:
    """Cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def default_jobs() -> int:
    """Runs at a time: 2 on 2 or more cores, else 1."""
    return 2 if cpu_cores() >= 2 else 1


def threads_per_job(jobs: int) -> Optional[int]:
    """OMP_NUM_THREADS of each run: the cores shared out, unless the user set it (None)."""
    if jobs == 1 or 'OMP_NUM_THREADS' in os.environ:
        return None
    return max(1, cpu_cores() // jobs)


def run_side_by_side(plan: Sequence[tuple], one_run: Callable[..., Any], jobs: int,
                     report: Callable[[Any], None]) -> list:
    """``one_run(k, *item)`` for every ``item`` of ``plan`` (k counts from 1), ``jobs`` at a time.

    ``report`` receives each return value as its run finishes. On a failure the runs not started
    are cancelled (those started finish or fail on their own) and the error propagates.

    Returns:
        list: The return values in the order of ``plan``.
    """
    results = [None] * len(plan)
    # runs are independent processes; threads here only wait for them
    with ThreadPoolExecutor(max_workers=jobs) as pool:
        futures = {pool.submit(one_run, k, *item): k - 1 for k, item in enumerate(plan, 1)}
        try:
            for future in as_completed(futures):
                results[futures[future]] = future.result()
                report(results[futures[future]])
        except BaseException:
            for future in futures:
                future.cancel()
            raise
    return results


def run_tool(cmd: Sequence[str],
             log_file: Optional[str] = None,
             threads: Optional[int] = None,
             echo: bool = True,
             prefix: str = '',
             tag: str = '[demo]') -> None:
    """Run a tool from the repository root; fail loudly.

    Args:
        cmd (Sequence[str]): The command.
        log_file (str, optional): Where its output goes too. Defaults to None.
        threads (int, optional): Its OMP_NUM_THREADS (None: inherited). Defaults to None.
        echo (bool): Stream its output (after the command line) to stdout; otherwise it goes to
            ``log_file`` only and a failure shows the log's tail. Defaults to True.
        prefix (str): Starts every streamed line (runs side by side). Defaults to ''.
        tag (str): Names the caller in messages. Defaults to '[demo]'.
    """
    cmd = list(cmd)
    if echo:
        print(f'{prefix}{tag} $ ' + ' '.join(cmd), flush=True)
    env = dict(os.environ, PYTHONUNBUFFERED='1')
    if threads is not None:
        env['OMP_NUM_THREADS'] = str(threads)
    tail: Deque[str] = deque(maxlen=60)  # the last lines, shown on failure
    log = open(log_file, 'w') if log_file else None
    try:
        with subprocess.Popen(
                cmd, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                text=True) as proc:
            for line in proc.stdout:
                if echo:
                    sys.stdout.write(prefix + line)
                if log:
                    log.write(line)
                tail.append(line)
    finally:
        if log:
            log.close()
    if proc.returncode != 0:
        raise SystemExit(f'{tag} step failed ({proc.returncode}): {" ".join(cmd)}'
                         + ('' if echo else '\n' + ''.join(tail)[-3000:])
                         + (f'\n{tag} log: {log_file}' if log_file else ''))


def make_dataset(data_root: str,
                 num_train: int,
                 num_val: int,
                 height: int,
                 width: int,
                 seed: int,
                 log_dir: Optional[str] = None,
                 echo: bool = True,
                 tag: str = '[demo]') -> None:
    """Write the synthetic Cityscapes-layout set and convert it with the real converter.

    Args:
        data_root (str): The dataset root to create.
        num_train (int): Training images.
        num_val (int): Validation images.
        height (int): Image height.
        width (int): Image width.
        seed (int): Seed of the generator.
        log_dir (str, optional): Where ``make_synthetic.log`` and ``convert.log`` go.
            Defaults to None (no logs).
        echo (bool): Stream the tools' output. Defaults to True.
        tag (str): Names the caller in messages. Defaults to '[demo]'.
    """
    py = sys.executable
    logs = {
        step: osp.join(log_dir, f'{step}.log') if log_dir else None
        for step in ('make_synthetic', 'convert')
    }
    run_tool([
        py, '-m', 'projects.toy_cityscapes.make_synthetic', '--layout', 'cityscapes', '--out',
        data_root, '--num-train', str(num_train), '--num-val', str(num_val), '--height',
        str(height), '--width', str(width), '--seed', str(seed)
    ], logs['make_synthetic'], echo=echo, tag=tag)
    run_tool([py, 'tools/dataset_converters/cityscapes_panoptic.py', data_root],
             logs['convert'], echo=echo, tag=tag)


#: Per evaluation task: the prefix of its metric keys and the factor to percent (mmibs'
#: PanopticQualityMetric reports percent, mmdet's CityScapesMetric fractions).
METRIC_KEYS = {'panoptic': ('panoptic/', 1.0), 'instance': ('cityscapes/', 100.0)}


def data_options(data_root: str, nested_train: bool, task: str = 'panoptic') -> List[str]:
    """--cfg-options pointing an experiment config at ``data_root``.

    ``nested_train``: the training set is wrapped by CropSamplingDataset
    (``train_dataloader.dataset.dataset``). ``task``: ``'panoptic'`` (PanopticQualityMetric on the
    converted val json and PNGs) or ``'instance'`` (CityScapesMetric on the raw ``gtFine/val``).
    """
    train_key = 'train_dataloader.dataset.dataset' if nested_train else 'train_dataloader.dataset'
    options = [
        f'{train_key}.data_root={data_root}', f'val_dataloader.dataset.data_root={data_root}',
        f'test_dataloader.dataset.data_root={data_root}'
    ]
    if task == 'instance':
        gt_dir = osp.join(data_root, 'gtFine', 'val')
        return options + [
            f'val_evaluator.seg_prefix={gt_dir}', f'test_evaluator.seg_prefix={gt_dir}'
        ]
    ann = osp.join(data_root, 'annotations')
    return options + [
        f'val_evaluator.ann_file={ann}/cityscapes_panoptic_val.json',
        f'val_evaluator.seg_prefix={ann}/cityscapes_panoptic_val/',
        f'test_evaluator.ann_file={ann}/cityscapes_panoptic_val.json',
        f'test_evaluator.seg_prefix={ann}/cityscapes_panoptic_val/'
    ]


def schedule_options(iters: int, poly_key: str = 'param_scheduler.1.end') -> List[str]:
    """--cfg-options training for ``iters`` iterations, evaluating and saving at the end.

    ``poly_key``: the scheduler entry whose ``end`` is one past the last iteration, as the configs
    write it (Panoptic FCN: warm-up + poly, ``param_scheduler.1.end``).
    """
    return [
        f'train_cfg.max_iters={iters}', f'train_cfg.val_interval={iters}',
        f'default_hooks.checkpoint.interval={iters}', f'{poly_key}={iters + 1}'
    ]


def read_metrics(test_dir: str, tag: str = '[demo]', task: str = 'panoptic') -> Dict[str, float]:
    """The metrics (percent) of the latest ``tools/test.py`` run under ``test_dir``: panoptic
    (``PQ``, ...) or, for ``task='instance'``, the Cityscapes instance AP (``mAP``, ``AP@50``)."""
    files = sorted(glob.glob(osp.join(test_dir, '*', '*.json')), key=osp.getmtime)
    if not files:
        raise SystemExit(f'{tag} no metrics json under {test_dir}')
    with open(files[-1]) as f:
        metrics = json.load(f)
    prefix, scale = METRIC_KEYS[task]
    return {k.split('/')[-1]: v * scale for k, v in metrics.items() if k.startswith(prefix)}


def read_val_curve(train_dir: str,
                   keys: Sequence[str] = ('PQ', 'PQ_th', 'PQ_st'),
                   task: str = 'panoptic') -> List[dict]:
    """The validations run during training: ``[{'iter': i, 'PQ': ..., ...}]`` in order (percent),
    read from the newest ``*/vis_data/scalars.json`` under ``train_dir`` (mmengine's
    LocalVisBackend writes a validation's metrics as one line whose ``step`` is the training
    iteration)."""
    files = sorted(glob.glob(osp.join(train_dir, '*', 'vis_data', 'scalars.json')))
    if not files:
        return []
    with open(files[-1]) as f:  # the timestamped folder names sort by time
        entries = [json.loads(line) for line in f if line.strip()]
    prefix, scale = METRIC_KEYS[task]
    return [
        dict(iter=e['step'], **{k: e[prefix + k] * scale for k in keys}) for e in entries
        if prefix + keys[0] in e
    ]


def train_and_test(config: str,
                   iters: int,
                   data_root: str,
                   nested_train: bool,
                   train_dir: str,
                   test_dir: str,
                   train_options: Sequence[str],
                   logs: Tuple[str, str],
                   threads: Optional[int] = None,
                   echo: bool = True,
                   prefix: str = '',
                   tag: str = '[demo]',
                   task: str = 'panoptic') -> Tuple[Dict[str, float], str, float]:
    """Train ``config`` with ``tools/train.py``, then evaluate its last checkpoint.

    Args:
        config (str): Config path, relative to the repository root.
        iters (int): Training iterations (the schedule is set by ``train_options``).
        data_root (str): The converted synthetic set.
        nested_train (bool): The config wraps its training set in CropSamplingDataset.
        train_dir (str): ``--work-dir`` of the training.
        test_dir (str): ``--work-dir`` of the evaluation.
        train_options (Sequence[str]): --cfg-options of the training beside the data options.
        logs (tuple[str, str]): Training and evaluation log files.
        threads (int, optional): OMP_NUM_THREADS of both tools. Defaults to None (inherited).
        echo (bool): Stream the tools' output. Defaults to True.
        prefix (str): Starts every streamed line. Defaults to ''.
        tag (str): Names the caller in messages. Defaults to '[demo]'.
        task (str): What the config is evaluated with, ``'panoptic'`` or ``'instance'`` (see
            :func:`data_options`). Defaults to 'panoptic'.

    Returns:
        tuple: The metrics (:func:`read_metrics`), the checkpoint's path and the training's
        seconds.
    """
    py = sys.executable
    data = data_options(data_root, nested_train, task)
    start = time.time()
    run_tool([
        py, 'tools/train.py', config, '--work-dir', train_dir, '--cfg-options', *data,
        *train_options
    ], logs[0], threads, echo=echo, prefix=prefix, tag=tag)
    train_seconds = time.time() - start
    checkpoint = osp.join(train_dir, f'iter_{iters}.pth')
    if echo:
        print(f'{prefix}{tag} evaluating on the validation images: {checkpoint}', flush=True)
    run_tool([py, 'tools/test.py', config, checkpoint, '--work-dir', test_dir, '--cfg-options',
              *data], logs[1], threads, echo=echo, prefix=prefix, tag=tag)
    metrics = read_metrics(test_dir, tag) if task == 'panoptic' else read_metrics(
        test_dir, tag, task)
    return metrics, checkpoint, train_seconds


def confusion_figures(checkpoints: Sequence[str],
                      configs: Sequence[str],
                      names: Sequence[str],
                      data_root: str,
                      fig_dir: str,
                      max_images: int,
                      log_file: Optional[str] = None,
                      echo: bool = True,
                      tag: str = '[demo]') -> None:
    """Per-instance and panoptic confusion figures of the validation images
    (``tools/analysis_tools/visualize_confusion.py``), one column per model."""
    opts = [o for o in data_options(data_root, nested_train=False) if not o.startswith('train')]
    run_tool([
        sys.executable, 'tools/analysis_tools/visualize_confusion.py', *checkpoints, '--configs',
        *configs, '--names', *names, '--dataset-split', 'val', '--out-dir', fig_dir,
        '--max-images', str(max_images), '--max-instances', '3', '--cfg-options', *opts
    ], log_file, echo=echo, tag=tag)
