# Copyright (c) mmibs contributors. All rights reserved.
"""Argument checks whose errors name the caller, the argument and the value."""
from typing import Any, Collection


def check_choice(owner: str, name: str, value: Any, choices: Collection) -> None:
    """Raise a ValueError unless ``value`` is one of ``choices``.

    Args:
        owner (str): What takes the argument, e.g. ``'PanopticQualityMetric'``.
        name (str): The argument's name.
        value: Its value.
        choices (Collection): The accepted values.

    Raises:
        ValueError: ``'<owner>: <name> must be one of <choices>, got <value>'``.
    """
    if value not in choices:
        raise ValueError(f'{owner}: {name} must be one of {tuple(choices)}, got {value!r}')
