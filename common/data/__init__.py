"""Datasets, transforms, deterministic splits and DataLoaders."""
