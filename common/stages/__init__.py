"""Stage entrypoints: python3 -m common.stages.prepare|train|evaluate."""
