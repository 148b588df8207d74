"""trafilatura's own command line over a URL list: ``trafilatura -i urls.txt -o OUT --parallel N``.

Its default settings.cfg with two changes, so it can run against the local site at full speed:
``SLEEP_TIME = 0`` (no 5 s pause between requests to one host) and ``SSRF_PROTECTION = off``
(127.0.0.1 is the site); passed with ``--config-file``.

Run by bench/speed.py with the interpreter of .venv-peers (bench/peers/requirements.txt)::

    .venv-peers/bin/python bench/peers/trafilatura_cli.py URLS_FILE OUT_DIR [--parallel N]

Prints one JSON line: {"stored": URLs given minus those it logged "No result for URL" for,
"files": files written, "seconds": wall time of the command}. Files undercount: the CLI names each
output by a bag-of-words hash of its text, so the site's copies of one corpus page (which differ by
a marker only) overwrite each other.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path


def main() -> None:
    """Run the CLI once and report what it wrote."""
    parser = argparse.ArgumentParser()
    parser.add_argument("urls", type=Path)
    parser.add_argument("out", type=Path)
    parser.add_argument("--parallel", type=int, default=os.cpu_count() or 1)
    args = parser.parse_args()
    exe = Path(sys.executable).with_name("trafilatura")
    import trafilatura

    default = (Path(trafilatura.__file__).parent / "settings.cfg").read_text()
    config = args.out.parent / "trafilatura-bench.cfg"
    config.write_text(default.replace("SLEEP_TIME = 5.0", "SLEEP_TIME = 0").replace("SSRF_PROTECTION = on",
                                                                                       "SSRF_PROTECTION = off"))
    started = time.perf_counter()
    done = subprocess.run([str(exe), "-i", str(args.urls), "-o", str(args.out), "--parallel", str(args.parallel),
                    "--config-file", str(config), "-v"],
                   check=False, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    seconds = time.perf_counter() - started
    files = sum(1 for p in args.out.rglob("*") if p.is_file()) if args.out.exists() else 0
    given = sum(1 for line in args.urls.read_text().splitlines() if line.strip())
    failed = done.stderr.count("No result for URL")
    print(json.dumps({"stored": given - failed, "files": files, "seconds": seconds}))


if __name__ == "__main__":
    main()
