"""``python -m tasker``: see :mod:`tasker.cli`."""

import sys

from .cli import main

sys.exit(main())
