"""The one error a stage turns into a non-zero exit with a one-line, actionable message."""


class StageError(Exception):
    """Bad input (config, paths, data): the message says what to change."""
