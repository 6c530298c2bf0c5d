"""Importing this registers every component `common` ships."""

from common import evaluation, losses, models, optim, trainer  # noqa: F401
from common.data import datasets, transforms  # noqa: F401
