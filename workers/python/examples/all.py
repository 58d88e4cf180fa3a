"""Every example handler: importing this module registers the handlers of
all example workflows in :data:`tasker.default_registry`, so one worker
serves them all::

    python -m tasker worker --app examples.all
"""

from __future__ import annotations

from . import approvals, csv_batch, ecommerce, numbers, parity

__all__ = ["approvals", "csv_batch", "ecommerce", "numbers", "parity"]
