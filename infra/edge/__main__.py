"""``python -m infra.edge``: see ``infra.edge.process``."""

from infra.edge.process import main

raise SystemExit(main())
