# Shortcuts for the scripts in scripts/ (which need nothing but bash and python3).
.PHONY: demo test quick engine setup lint bench
demo:   ; scripts/demo
test:   ; scripts/test
quick:  ; scripts/test -m "not slow"
engine: ; scripts/engine
setup:  ; scripts/setup
lint:   ; scripts/setup && .venv/bin/ruff check .
bench:  ; scripts/setup && .venv/bin/python bench/store.py
