"""``python -m pymcd``: the same as the ``pymcd`` script."""

import sys

from pymcd.cli import main

sys.exit(main())
