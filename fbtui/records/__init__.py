"""A run's record and what is built on it: comparison rows, show, diff, export, resume, rerun.
The CLI and the app both call these; nothing here imports Textual."""
