"""``python -m scratchnet``: the same command line as ``scratchnet``."""

import sys

from scratchnet.cli import main

sys.exit(main())
