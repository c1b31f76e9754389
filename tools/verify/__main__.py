"""`python -m tools.verify` (tools/verify/cli.py)."""

import sys

from tools.verify.cli import main

sys.exit(main())
