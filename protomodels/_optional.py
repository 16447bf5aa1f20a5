"""Imports of packages that a feature needs but the core does not: a missing one is a one-line
error that names the feature and the install command, never a bare ``ModuleNotFoundError``."""

from __future__ import annotations

import importlib
import sys
from types import ModuleType

from protomodels.exceptions import ProtomodelsError

__all__ = ["PACKAGES", "MissingDependencyError", "require"]


def __dir__() -> list[str]:
    return __all__


#: module -> (package specification to install, what it is for)
PACKAGES: dict[str, tuple[str, str]] = {
    "matplotlib": ("matplotlib>=3.7", "plots (protomodel plot)"),
    "dask.distributed": ("dask[distributed]>=2024.1", "campaigns over a dask cluster"),
}


class MissingDependencyError(ProtomodelsError, ImportError):
    """A package needed by the feature asked for is not installed (the message gives the
    install command)."""


def require(module: str, *, feature: str | None = None) -> ModuleType:
    """Import ``module`` or raise :class:`MissingDependencyError` naming the install command.

    Args:
        module: the module to import (``"matplotlib"``, ``"dask.distributed"``).
        feature: what needs it, for the message (default: the entry of :data:`PACKAGES`).
    """
    try:
        return importlib.import_module(module)
    except ImportError as err:
        spec, purpose = PACKAGES.get(module, (module.split(".")[0], "this feature"))
        msg = (
            f"{feature or purpose} needs the Python package {module}, which is not installed "
            f"in {sys.executable}: run {sys.executable} -m pip install '{spec}'"
        )
        raise MissingDependencyError(msg, name=module) from err
