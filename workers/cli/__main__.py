"""``python -m workers.cli``: the ``ingest`` command."""

import sys

from workers.cli.main import main

sys.exit(main())
