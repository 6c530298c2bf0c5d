"""Shared stage runner: context from args/env/defaults, project code, one-line errors."""

from __future__ import annotations

import sys
from collections.abc import Callable

from common.context import StageContext, import_project_code, parse
from common.errors import StageError


def main(stage: str, body: Callable[[StageContext], None], argv: list[str] | None = None) -> int:
    try:
        ctx = parse(stage, argv)
        import_project_code(ctx.project_dir)
        body(ctx)
    except StageError as e:
        # One line: the runner shows it as the stage's failure reason.
        print(f"{stage}: error: {' '.join(str(e).split())}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"{stage}: interrupted", file=sys.stderr)
        return 130
    return 0
