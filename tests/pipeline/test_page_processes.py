"""`INGEST_PAGE_PROCESSES` / `ingest worker --page-processes`: how many page-parsing children a worker process keeps."""

from __future__ import annotations

import subprocess
import sys
import threading
from pathlib import Path

from tests.conftest import RedisServer
from tests.support.pipeline import ROOT, assert_site_stored, load_records, mixed_site, wait_for, worker_env, workers
from tests.support.site import serve_site
from workers.core.settings import Settings
from workers.core.storage import open_storage
from workers.pipeline.runtime import page_pool_size


def test_the_pool_size_is_the_setting_else_one_and_a_half_per_cpu() -> None:
    assert page_pool_size(Settings.from_env({}), 2) == 3
    assert page_pool_size(Settings.from_env({}), 1) == 2  # a replacement never leaves a core idle
    assert page_pool_size(Settings.from_env({}), 8) == 12
    assert page_pool_size(Settings.from_env({"INGEST_PAGE_PROCESSES": "2"}), 8) == 2


def test_a_bad_page_processes_option_is_a_usage_error_before_any_worker_starts() -> None:
    done = subprocess.run([sys.executable, "-m", "workers.cli", "worker", "--page-processes", "5000"],
                          env=worker_env(INGEST_BROKER_URL="redis://127.0.0.1:1/0"), cwd=ROOT, capture_output=True,
                          text=True, timeout=60)  # fmt: skip
    assert done.returncode == 2
    assert "INGEST_PAGE_PROCESSES" in done.stderr


def _pool_children(root: int) -> int:
    """Children of the forkserver processes under ``root``: the page pools' children."""
    count, stack = 0, [root]
    while stack:
        pid = stack.pop()
        kids: list[int] = []
        for task in Path(f"/proc/{pid}/task").glob("*"):
            try:
                kids += [int(c) for c in (task / "children").read_text().split()]
            except (FileNotFoundError, ProcessLookupError):
                continue
        try:
            forkserver = b"multiprocessing.forkserver" in Path(f"/proc/{pid}/cmdline").read_bytes()
        except (FileNotFoundError, ProcessLookupError):
            forkserver = False
        if forkserver:
            count += len(kids)
        stack += kids
    return count


def test_an_extract_worker_keeps_no_more_page_children_than_asked_and_stores_everything(
    tmp_path: Path, redis_server: RedisServer
) -> None:
    # Four threads would start up to three children (the default pool of a 2-CPU host); asked
    # for one, every thread shares it, and every article is still extracted.
    site = mixed_site()
    out = tmp_path / "out"
    env = worker_env(INGEST_BROKER_URL=redis_server.url, INGEST_STORAGE_URL=str(out), INGEST_ALLOW_PRIVATE="1",
                     INGEST_HOST_RATE="0")  # fmt: skip
    storage = open_storage(str(out))
    seen: list[int] = []
    stop = threading.Event()
    with serve_site(site) as server, workers(
        (["--stages", "discover,fetch,sink", "--processes", "1", "--threads", "8"], tmp_path / "a.log"),
        (["--stages", "extract", "--processes", "1", "--threads", "4", "--page-processes", "1"], tmp_path / "b.log"),
        env=env,
    ) as procs:
        def sample() -> None:
            while not stop.wait(0.05):
                seen.append(_pool_children(procs[1].proc.pid))

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        sent = subprocess.run([sys.executable, "-m", "workers.cli", "enqueue", server.base_url + "/", "--kind",
                               "listing"], env=env, cwd=ROOT, capture_output=True, text=True, timeout=60)  # fmt: skip
        assert sent.returncode == 0, sent.stderr
        wait_for(lambda: len(list(storage.keys("articles/"))) >= len(site.articles), 120, "all records stored")
        stop.set()
        sampler.join(5)
        assert_site_stored(site, server.base_url, load_records(storage))
    assert max(seen) == 1, f"page children seen: {sorted(set(seen))}"
