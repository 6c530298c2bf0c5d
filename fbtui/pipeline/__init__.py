"""Pipelines: runs of stages in containers on lab hosts, advanced by a detached supervisor."""
