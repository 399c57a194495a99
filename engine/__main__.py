"""``python -m engine``: hands the command line to :func:`engine.cli.main` and exits with its code."""

from __future__ import annotations

import sys

from engine.cli import main

__all__ = ["main"]

if __name__ == "__main__":
    sys.exit(main())
