"""Exceptions raised by protomodels, one class per kind of failure.

Every message says what went wrong, where (file, line, field) and what to do about it.
"""

from __future__ import annotations

from pathlib import Path

__all__ = [
    "DatabaseFormatError",
    "DatabaseNotFoundError",
    "InputCorrectionWarning",
    "InvalidProtomodelError",
    "ProtomodelsError",
    "SharedDataNotFoundError",
    "StoreSchemaError",
]


def __dir__() -> list[str]:
    return __all__


class ProtomodelsError(Exception):
    """Base class of all protomodels errors."""


class DatabaseFormatError(ProtomodelsError):
    """A file of the SModelS text database cannot be read.

    Attributes:
        path: the offending file.
        field: the tag (e.g. ``efficiencyMap``, ``covariance``) or None.
        line: 1-based line number in the file, or None.
        problem: what is wrong.
        hint: what to do about it.
    """

    def __init__(
        self,
        path: str | Path,
        problem: str,
        *,
        field: str | None = None,
        line: int | None = None,
        hint: str = "fix the file or remove the result folder, then rerun the import",
    ) -> None:
        self.path = str(path)
        self.field = field
        self.line = line
        self.problem = problem
        self.hint = hint
        where = self.path
        if line is not None:
            where += f", line {line}"
        if field is not None:
            where += f", field '{field}'"
        super().__init__(f"{where}: {problem} -> {hint}")

    def __reduce__(self):  # noqa: ANN204 - keeps the error picklable across processes
        return (
            _rebuild_format_error,
            (self.path, self.problem, self.field, self.line, self.hint),
        )


def _rebuild_format_error(
    path: str, problem: str, field: str | None, line: int | None, hint: str
) -> DatabaseFormatError:
    return DatabaseFormatError(path, problem, field=field, line=line, hint=hint)


class DatabaseNotFoundError(ProtomodelsError):
    """The database source or store does not exist."""


class SharedDataNotFoundError(ProtomodelsError):
    """The shared data folder (``../shared``) cannot be found."""


class StoreSchemaError(ProtomodelsError):
    """A store file was written by an incompatible version of protomodels."""


class InvalidProtomodelError(ProtomodelsError):
    """The protomodel is not physical or not understood (the message names file and field)."""


class InputCorrectionWarning(UserWarning):
    """An input was read with a stated correction (e.g. a negative SLHA mass taken as its
    absolute value, a particle at >= 1e5 GeV frozen); the message says what was changed."""
