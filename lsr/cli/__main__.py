"""``python -m lsr.cli``: the ``lsr`` command."""

import sys

from lsr.cli.main import main

if __name__ == "__main__":
    sys.exit(main())
