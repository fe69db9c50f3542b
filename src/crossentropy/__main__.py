"""``python -m crossentropy``: the ``crossentropy`` command."""

import sys

from crossentropy.cli import main

sys.exit(main())
