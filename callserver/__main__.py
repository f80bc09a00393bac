"""``python -m callserver`` runs the ``callserver`` command."""

import sys

from callserver.cli import main

sys.exit(main())
