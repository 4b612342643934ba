"""``python3 -m dockerlab`` runs the ``dockerlab`` command (handy when ~/.local/bin is not on PATH)."""

import sys

from .cli import main

sys.exit(main())
