# Copyright (c) mmibs contributors. All rights reserved.
import datetime
import warnings

from mmengine import DefaultScope


def register_all_modules(init_default_scope: bool = True) -> None:
    """Register mmdet's and mmibs' modules into mmdet's registries.

    mmibs registers into mmdet's registries (see :mod:`mmibs.registry`), so the default scope is
    ``'mmdet'``.

    Args:
        init_default_scope (bool): Whether to set the default scope to ``'mmdet'``, so that
            registries find their modules without a scope prefix. Defaults to True.
    """
    from mmdet.utils import register_all_modules as register_mmdet_modules
    register_mmdet_modules(init_default_scope=False)
    import mmibs.datasets  # noqa: F401
    import mmibs.evaluation  # noqa: F401
    import mmibs.models  # noqa: F401
    import mmibs.visualization  # noqa: F401

    if not init_default_scope:
        return
    never_created = DefaultScope.get_current_instance() is None \
        or not DefaultScope.check_instance_created('mmdet')
    if never_created:
        DefaultScope.get_instance('mmdet', scope_name='mmdet')
        return
    current_scope = DefaultScope.get_current_instance()
    if current_scope.scope_name != 'mmdet':
        warnings.warn('The current default scope '
                      f'"{current_scope.scope_name}" is not "mmdet", '
                      '`register_all_modules` will force the current'
                      'default scope to be "mmdet". If this is not '
                      'expected, please set `init_default_scope=False`.')
        # avoid name conflict
        new_instance_name = f'mmdet-{datetime.datetime.now()}'
        DefaultScope.get_instance(new_instance_name, scope_name='mmdet')
