"""``python -m trading`` is ``trio-trade``."""

import sys

from trading.cli import main

sys.exit(main())
