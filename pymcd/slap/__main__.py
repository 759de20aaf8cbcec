"""``python -m pymcd.slap``: the same entry point as the ``pymcd-slap`` script."""

from __future__ import annotations

import sys

from pymcd.slap.cli import main

if __name__ == "__main__":
    sys.exit(main())
