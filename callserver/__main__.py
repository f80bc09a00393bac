"""``python -m callserver`` runs the ``callserver`` command.

The guard matters: a worker process started with the 'spawn' method imports this module again
(as ``__mp_main__``), and must not run the command a second time.
"""

import sys

from callserver.cli import main

if __name__ == "__main__":
    sys.exit(main())
