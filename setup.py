#!/usr/bin/env python
# Copyright (c) mmibs contributors. All rights reserved.
"""mmibs packaging, following mmdet / mmyolo.

``add_mim_extension`` ships ``tools/`` and ``configs/`` inside the package as ``mmibs/.mim`` so that
``mim train mmibs CONFIG`` and ``mim test mmibs CONFIG`` find them: symlinked for a develop install
(``pip install --no-use-pep517 -e .``, what ``tools/setup_env.sh`` does), copied into sdists and
wheels.
"""
import os
import os.path as osp
import platform
import shutil
import sys
import warnings

from setuptools import find_packages, setup

version_file = 'mmibs/version.py'


def get_version():
    with open(version_file) as f:
        exec(compile(f.read(), version_file, 'exec'))
    return locals()['__version__']


def readme():
    with open('README.md', encoding='utf-8') as f:
        return f.read()


# Ranges, not the exact pins of requirements/*.txt: a user's environment may differ within them.
# torch and mmcv are the user's: torch comes in a CPU or CUDA build, and mmcv 2.1.0 is a source
# distribution compiled against that torch (tools/setup_env.sh, docs/engine.md "GPU set-up"), so pip
# must not pick either on its own. tests/test_setup.py checks that this list covers every module
# that `import mmibs`, the training configs and the tools load.
install_requires = [
    'mmcv>=2.1.0,<2.2.0',
    'mmengine>=0.10.3,<0.10.8',  # docs/engine.md: why this range
    'mmdet>=3.3.0,<3.4.0',
    # mmengine resolves `mmdet::` config bases with pkg_resources without declaring it; setuptools 82
    # removed pkg_resources
    'setuptools<82',
    'numpy>=1.24',
    'scipy',
    'matplotlib',
    'Pillow',
    'opencv-python>=4.10,<5',
    'pycocotools',
    # its label tables and panoptic conversion (tools/dataset_converters/cityscapes_panoptic.py)
    'cityscapesscripts>=2.2',
    'terminaltables',
]
extras_require = {
    # faster PNG decoding in the panoptic evaluation (Rust png crate, GIL released; wheels for Linux
    # x86_64 and macOS); without it OpenCV decodes, with the same results (docs/metrics.md)
    'fast': ['imgread>=0.3,<0.4'],
    'tests': [
        'pytest', 'pytest-xdist', 'pytest-timeout',
        # the independent references the tests compare with: mmseg's IoUMetric and
        # cityscapesscripts' evaluators (which call np.in1d, removed in numpy 2.4)
        'mmsegmentation>=1.2.0,<1.3.0', 'ftfy', 'regex', 'numpy<2.4'
    ],
    'mim': ['openmim==0.3.9'],
}


def add_mim_extension():
    """Put ``tools/`` and ``configs/`` into ``mmibs/.mim`` for openmim.

    Symlinks for a develop install (``pip install --no-use-pep517 -e .`` runs ``setup.py
    develop``), copies for ``sdist`` / ``bdist_wheel`` (``pip install .``); nothing otherwise.
    """
    if 'develop' in sys.argv:
        # symlinks need extra privileges on Windows
        mode = 'copy' if platform.system() == 'Windows' else 'symlink'
    elif 'sdist' in sys.argv or 'bdist_wheel' in sys.argv:
        mode = 'copy'
    else:
        return

    filenames = ['tools', 'configs']
    repo_path = osp.dirname(__file__)
    mim_path = osp.join(repo_path, 'mmibs', '.mim')
    os.makedirs(mim_path, exist_ok=True)

    for filename in filenames:
        if osp.exists(filename):
            src_path = osp.join(repo_path, filename)
            tar_path = osp.join(mim_path, filename)

            if osp.isfile(tar_path) or osp.islink(tar_path):
                os.remove(tar_path)
            elif osp.isdir(tar_path):
                shutil.rmtree(tar_path)

            if mode == 'symlink':
                src_relpath = osp.relpath(src_path, osp.dirname(tar_path))
                os.symlink(src_relpath, tar_path)
            elif mode == 'copy':
                if osp.isfile(src_path):
                    shutil.copyfile(src_path, tar_path)
                elif osp.isdir(src_path):
                    shutil.copytree(src_path, tar_path)
                else:
                    warnings.warn(f'Cannot copy file {src_path}.')
            else:
                raise ValueError(f'Invalid mode {mode}')


if __name__ == '__main__':
    add_mim_extension()
    setup(
        name='mmibs',
        version=get_version(),
        description='Intra-Batch Supervision for panoptic segmentation on high-resolution images, '
        'an MMDetection 3.x extension',
        long_description=readme(),
        long_description_content_type='text/markdown',
        keywords='computer vision, panoptic segmentation, intra-batch supervision, mmdetection',
        packages=find_packages(exclude=('configs', 'tools', 'tests', 'projects', 'projects.*')),
        include_package_data=True,
        # torch 2.13, the torch mmibs is tested with, needs Python >= 3.10 (mmibs' own code runs on
        # 3.7+, by vermin); CI runs 3.11
        python_requires='>=3.10',
        classifiers=[
            'Development Status :: 4 - Beta',
            'License :: OSI Approved :: Apache Software License',
            'Operating System :: OS Independent',
            'Programming Language :: Python :: 3',
            'Programming Language :: Python :: 3.11',
        ],
        license='Apache License 2.0',
        install_requires=install_requires,
        extras_require=extras_require,
        zip_safe=False)
