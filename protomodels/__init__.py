"""protomodels: minimal new-physics models inferred bottom-up from LHC search results.

The package is organised so that data flow one way: ``database`` (SModelS text database ->
SQLite store -> records), then the theory, statistics, combination, critics and builders stages
(added issue by issue), and the ``cli`` on top.
"""

from protomodels._version import __version__

__all__ = ["__version__"]


def __dir__() -> list[str]:
    return __all__
