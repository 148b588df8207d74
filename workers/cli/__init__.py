"""The ``ingest`` command: ``main`` parses the command line and runs the pipeline's entry points.

``main`` holds the crawl/worker/enqueue/extract commands, ``ops`` the operator's commands
(status, reextract, config), ``sources`` the sources-file commands.
"""

from workers.cli.main import main

__all__ = ["main"]
