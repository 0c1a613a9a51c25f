"""``python -m actors``: the Dramatiq worker, logging through ``infra.logs``.

See ``actors.worker.main``.
"""

import sys

from actors.worker import main

sys.exit(main())
