"""``python -m fakeroot_builder`` is the ``dockerlab`` command."""

import sys

from dockerlab.cli import main

sys.exit(main())
