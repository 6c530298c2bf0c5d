"""Errors a person can act on: each carries the message to print and the exit code."""

from __future__ import annotations


class FBError(Exception):
    """A failure with a message meant for a person (no traceback is shown)."""

    exit_code = 1

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return self.message if not self.hint else f"{self.message}\n  hint: {self.hint}"


class UsageError(FBError):
    """Bad command-line input."""

    exit_code = 2


class LabNotFound(FBError):
    pass


class ConfigError(FBError):
    """Invalid configuration: names the file, the line and the dotted key."""

    def __init__(
        self,
        problem: str,
        *,
        file: str | None = None,
        line: int | None = None,
        key: str | None = None,
        hint: str | None = None,
    ) -> None:
        self.file, self.line, self.key, self.problem = file, line, key, problem
        where = ""
        if file:
            where = f"{file}:{line}: " if line else f"{file}: "
        what = f"{key}: {problem}" if key else problem
        super().__init__(where + what, hint)


class ConfigErrors(FBError):
    """Several config errors found in one pass, reported together."""

    def __init__(self, errors: list[ConfigError]) -> None:
        self.errors = errors
        super().__init__("\n".join(e.message for e in errors))
