# Copyright (c) mmibs contributors. All rights reserved.
"""Every relative link of the repository's Markdown files points at a file or folder that exists.

Results, configs and docs move (the measured toy results moved from the project folder to
``docs/results/``); a link that outlives its target sends a reader nowhere, and no other test reads
the prose. Web links (``http``, ``mailto``) and in-page anchors are not checked; a link's own
``#anchor`` is dropped before its path is checked.
"""
import glob
import os.path as osp
import re

import pytest

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
# [text](target) in Markdown prose; the target ends at the first space or closing parenthesis
LINK = re.compile(r'\[[^\]]*\]\(([^)\s]+)\)')
SKIP_DIRS = ('.venv', 'build', 'work_dirs', 'demo_out', '.git', 'node_modules')


def markdown_files():
    files = []
    for path in glob.glob(osp.join(REPO, '**', '*.md'), recursive=True):
        rel = osp.relpath(path, REPO)
        if rel.split(osp.sep)[0] not in SKIP_DIRS and '.egg-info' not in rel:
            files.append(rel)
    return sorted(files)


def relative_links(text: str):
    """The relative link targets of a Markdown text, without their anchors."""
    for target in LINK.findall(text):
        if re.match(r'^[a-z]+:', target) or target.startswith('#'):
            continue  # web link, mail, or an anchor on the same page
        yield target.split('#', 1)[0]


def test_link_extraction_skips_web_links_and_anchors():
    text = ('see [a](docs/a.md#x), [b](https://example.org/b.md), [c](#here), '
            '[d](../d/) and [e](mailto:x@y.z)')
    assert list(relative_links(text)) == ['docs/a.md', '../d/']


def test_markdown_files_are_found():
    files = markdown_files()
    assert 'README.md' in files and osp.join('docs', 'results', 'README.md') in files


@pytest.mark.parametrize('md', markdown_files())
def test_relative_links_resolve(md):
    with open(osp.join(REPO, md), encoding='utf-8') as f:
        text = f.read()
    base = osp.dirname(osp.join(REPO, md))
    missing = [t for t in relative_links(text) if not osp.exists(osp.normpath(osp.join(base, t)))]
    assert not missing, f'{md} links to missing paths: {missing}'
