"""The lab's shared pipeline (data loading, models, training, evaluation), installed in the base image."""

__version__ = "0.1.0"
