"""Force Build: build, run and compare deep-learning pipelines in containers."""

__version__ = "0.1.0"
