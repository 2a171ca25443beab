"""``python -m invsolve``: the ``invsolve`` command line (:func:`invsolve.cli.main`)."""

import sys

from invsolve.cli import main

if __name__ == "__main__":
    sys.exit(main())
