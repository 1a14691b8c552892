# Copyright (c) mmibs contributors. All rights reserved.
"""Renaming of state-dict keys by ordered regular-expression rules, as the checkpoint converters
(``tools/model_converters/``) map the released detectron2 names to mmibs' names."""
import re
from typing import Callable, Optional, Sequence, Tuple, Union

#: (pattern, replacement): the pattern must match the whole key; the replacement is a template for
#: ``re.Match.expand`` or a function of the match (which may return None: no counterpart).
Rule = Tuple[str, Union[str, Callable[[re.Match], Optional[str]]]]


def rename_key(key: str, rules: Sequence[Rule]) -> Optional[str]:
    """The new name of ``key`` by the first rule whose pattern matches it in full.

    Args:
        key (str): A state-dict key.
        rules (Sequence[Rule]): Rules, tried in order.

    Returns:
        str or None: The renamed key, or None when no rule matches (an unknown tensor stays
        unmapped, so that a converter can refuse it by name).
    """
    for pattern, repl in rules:
        match = re.fullmatch(pattern, key)
        if match:
            return repl(match) if callable(repl) else match.expand(repl)
    return None
