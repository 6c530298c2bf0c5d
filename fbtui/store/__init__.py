"""The SQLite store: runs, stages, params, metrics, commits, images, artifacts, evaluations."""

from fbtui.store.metrics import Comparison
from fbtui.store.store import RUN_STATUSES, STAGE_STATUSES, Store

__all__ = ["RUN_STATUSES", "STAGE_STATUSES", "Comparison", "Store"]
