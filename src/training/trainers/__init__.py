"""Built-in trainers. Every module in this package is imported, so its
``@register_workflow`` classes are registered: adding a trainer is adding a module here."""

from __future__ import annotations

import importlib
import pkgutil

for _module in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
    if not _module.name.startswith("_"):
        importlib.import_module(f"{__name__}.{_module.name}")
