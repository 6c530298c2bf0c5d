"""The Textual app (`fbtui` with no arguments). It talks to the core only; all blocking SQLite and
Docker work runs in thread workers that post their results back to the event loop."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from fbtui.tui.app import FBApp


def make_app(lab_path: str | None = None, **options: Any) -> FBApp:
    """The app on the lab at `lab_path` (or found from here), which it checks right after its first
    frame (FBApp.check_lab): importing pydantic and the config models is a quarter of a second."""
    from fbtui.lab import Lab
    from fbtui.tui.app import FBApp

    return FBApp(Lab.find(lab_path, check=False), **options)


def run_app(lab_path: str | None = None) -> int:
    """Find the lab, then run the app until the user quits. Returns an exit code."""
    app = make_app(lab_path)
    app.run()
    if app.crash_report:
        import sys

        print(f"fbtui: error: {app.crash_report}", file=sys.stderr)
    return app.return_code or 0  # non-zero when the app crashed or lab.yaml is bad
