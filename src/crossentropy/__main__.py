"""``python -m crossentropy``: the ``crossentropy`` command."""

import sys

from crossentropy.cli import console

sys.exit(console())
