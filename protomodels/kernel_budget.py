"""A budget for compiled kernels: release them before the process runs out of memory mappings.

On Linux every compiled XLA CPU executable keeps hundreds of memory mappings (one per code
object; a pyhf summary fit about a thousand), and the kernel caps a process at
``vm.max_map_count`` of them (65530 by default). A long run that compiles many shapes (every
grid-lookup size, simplified-likelihood size, pyhf workspace) would get past the cap and die
with ``LLVM ERROR: Unable to allocate section memory``. :class:`KernelBudget` watches the count
after every compilation and, past a share of the cap, drops every compiled kernel
(``jax.clear_caches()`` and the executables the pyhf stage keeps, see
:func:`register_release`); they are compiled again when next needed (from JAX's persistent
cache, when it is on). The numbers are unchanged: only time is spent.

Process-wide: one listener on JAX's compilation events counts compilations (registered on
first use); releasing affects every JAX function of the process.
"""

from __future__ import annotations

import gc
import threading
import warnings
from collections.abc import Callable
from pathlib import Path

import jax
from jax import monitoring

__all__ = ["MAPPING_SHARE", "KernelBudget", "memory_mappings", "register_release",
           "release_compiled_kernels"]


def __dir__() -> list[str]:
    return __all__


#: past this share of the kernel's cap on memory mappings, compiled kernels are released
MAPPING_SHARE = 0.9

_RELEASES: list[Callable[[], None]] = []
_LOCK = threading.Lock()
_COUNT = [0, False]  # compilations seen, listener registered


def _on_event(name: str, duration: float, **_: object) -> None:
    if name.endswith("backend_compile_duration"):
        _COUNT[0] += 1


def _compilations() -> int:
    """XLA compilations of this process since the listener was registered."""
    with _LOCK:
        if not _COUNT[1]:
            monitoring.register_event_duration_secs_listener(_on_event)
            _COUNT[1] = True
    return int(_COUNT[0])


def memory_mappings() -> tuple[int, int] | None:
    """(mappings the process holds, the kernel's cap), or None where /proc does not say."""
    try:
        with open("/proc/self/maps", "rb") as maps:  # noqa: PTH123
            used = sum(1 for _ in maps)
        limit = int(Path("/proc/sys/vm/max_map_count").read_text())
    except (OSError, ValueError):
        return None
    return used, limit


def register_release(release: Callable[[], None]) -> None:
    """Add a function that drops compiled executables kept outside JAX's caches."""
    if release not in _RELEASES:
        _RELEASES.append(release)


def release_compiled_kernels() -> None:
    """Drop every compiled kernel of the process (they compile again when next needed)."""
    jax.clear_caches()
    for release in _RELEASES:
        release()
    gc.collect()


class KernelBudget:
    """Checks the memory mappings after new compilations; past ``share`` of the cap, releases
    every compiled kernel (:func:`release_compiled_kernels`) and says so once.

    Call :meth:`check` between evaluations: it reads /proc only when something was compiled
    since the last call.
    """

    def __init__(self, share: float = MAPPING_SHARE) -> None:
        if not 0.0 <= share < 1.0:
            msg = f"KernelBudget: share must be in [0, 1), not {share}"
            raise ValueError(msg)
        self.share = share
        self.releases = 0
        self._seen = _compilations()

    def check(self) -> bool:
        """Release the compiled kernels if the process is past its share; True if it did."""
        count = _compilations()
        if count == self._seen:
            return False
        self._seen = count
        state = memory_mappings()
        if state is None or state[0] <= self.share * state[1]:
            return False
        release_compiled_kernels()
        self.releases += 1
        if self.releases == 1:
            used, limit = state
            warnings.warn(
                f"compiled kernels released: the process held {used} memory mappings of the "
                f"kernel's {limit} (vm.max_map_count); they compile again when needed (raising "
                "vm.max_map_count avoids this)",
                RuntimeWarning,
                stacklevel=2,
            )
        return True
