"""The backbone registry: every :class:`~eegfm.backbones.spec.BackboneSpec`, by name.

The specs are defined once, in their family's module under
:mod:`eegfm.backbones.families`; this module imports each of those modules
and collects their ``SPECS`` (ordered by module name, then as listed), so a
new family file is registered by existing. Importing it is cheap (no torch,
no braindecode): the config validator and the CLI read it at parse time.
"""

from __future__ import annotations

import importlib
import pkgutil
from types import ModuleType

from eegfm.backbones import families
from eegfm.backbones.spec import BackboneSpec


def family_modules() -> list[ModuleType]:
    """The modules of :mod:`eegfm.backbones.families`, imported, in name order."""
    names = sorted(info.name for info in pkgutil.iter_modules(families.__path__) if not info.name.startswith("_"))
    return [importlib.import_module(f"{families.__name__}.{name}") for name in names]


def _collect() -> dict[str, BackboneSpec]:
    registry: dict[str, BackboneSpec] = {}
    for module in family_modules():
        specs = getattr(module, "SPECS", None)
        if not isinstance(specs, tuple) or not all(isinstance(spec, BackboneSpec) for spec in specs):
            raise TypeError(f"{module.__name__} must define SPECS, a tuple of BackboneSpec")
        for spec in specs:
            if spec.name in registry:
                raise ValueError(f"backbone '{spec.name}' is defined twice (second time in {module.__name__})")
            registry[spec.name] = spec
    return registry


REGISTRY: dict[str, BackboneSpec] = _collect()


def get_spec(name: str) -> BackboneSpec:
    """The spec registered as ``name``; the error lists the registered names."""
    try:
        return REGISTRY[name]
    except KeyError:
        raise KeyError(f"unknown backbone '{name}'; registered: {', '.join(sorted(REGISTRY))}") from None
