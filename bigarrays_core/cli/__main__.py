"""``python -m bigarrays_core.cli`` is the ``bigarrays`` command."""

import sys

from bigarrays_core.cli import main

sys.exit(main())
