"""``python -m crossentropy.cli``."""

import sys

from crossentropy.cli import console

sys.exit(console())
