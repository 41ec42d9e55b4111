"""``python -m bigarrays_cli`` is the ``bigarrays`` command."""

import sys

from bigarrays_cli import main

sys.exit(main())
