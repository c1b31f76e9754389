"""`python -m tools.cost` (tools/cost/cli.py)."""

import sys

from tools.cost.cli import main

sys.exit(main())
