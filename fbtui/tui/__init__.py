"""The Textual app (`fbtui` with no arguments). It talks to the core only; all blocking SQLite and
Docker work runs in thread workers that post their results back to the event loop."""

from __future__ import annotations


def run_app(lab_path: str | None = None) -> int:
    """Find the lab, then run the app until the user quits. Returns an exit code."""
    from fbtui.lab import Lab
    from fbtui.tui.app import FBApp

    lab = Lab.find(lab_path)
    app = FBApp(lab)
    app.run()
    if app.crash_report:
        import sys

        print(f"fbtui: error: {app.crash_report}", file=sys.stderr)
    return app.return_code or 0  # non-zero when the app crashed
