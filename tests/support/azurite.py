"""Azurite (Microsoft's Azure Storage emulator, from npm) on a free port of 127.0.0.1, for tests.

:func:`azurite_blob` finds ``azurite-blob`` under ``.venv/azurite`` (``AZURITE_DIR`` overrides),
installing it there with npm on first use (about 40 s, then cached); CI installs it up front.
:class:`Azurite` runs one in-memory blob service, telemetry off (it would call out to Azure).
Accounts and keys are Azurite's public development ones.
"""

from __future__ import annotations

import base64
import email.utils
import fcntl
import hashlib
import hmac
import http.client
import os
import shutil
import socket
import subprocess
import time
from pathlib import Path
from types import TracebackType

from tests.conftest import free_port

ROOT = Path(__file__).resolve().parents[2]
AZURITE_VERSION = "3.35.0"
#: Azurite's built-in account and its well-known key (documented, not a secret).
ACCOUNT = "devstoreaccount1"
ACCOUNT_KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
_API_VERSION = "2021-08-06"


def azurite_blob() -> Path:
    """The ``azurite-blob`` executable, installed with npm into the cache folder when missing."""
    root = Path(os.environ.get("AZURITE_DIR") or ROOT / ".venv" / "azurite")
    binary = root / "node_modules" / ".bin" / "azurite-blob"
    if binary.exists():
        return binary
    npm = shutil.which("npm")
    if npm is None:
        raise RuntimeError("npm is not installed: Azurite comes from the npm registry (apt-get install nodejs npm)")
    root.mkdir(parents=True, exist_ok=True)
    # A lock, so two test processes do not install into the same folder at once.
    with (root / ".install.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not binary.exists():
            done = subprocess.run(
                [npm, "install", "--prefix", str(root), "--no-audit", "--no-fund", "--loglevel=error",
                 f"azurite@{AZURITE_VERSION}"],
                capture_output=True, text=True, timeout=300, check=False,
            )
            if done.returncode != 0 or not binary.exists():
                raise RuntimeError(f"npm could not install azurite@{AZURITE_VERSION}: {done.stderr.strip()[-500:]}")
    return binary


class Azurite:
    """An Azurite blob service owned by a test; a context manager."""

    def __init__(self, workdir: Path) -> None:
        self.port = free_port()
        self.workdir = workdir
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def endpoint(self) -> str:
        """The blob endpoint, path-style with the account (what ``INGEST_AZURE_ENDPOINT`` takes)."""
        return f"http://127.0.0.1:{self.port}/{ACCOUNT}"

    def env(self) -> dict[str, str]:
        """Environment for a process that stores into this Azurite."""
        return {"INGEST_AZURE_ENDPOINT": self.endpoint, "AZURE_STORAGE_ACCOUNT_NAME": ACCOUNT,
                "AZURE_STORAGE_ACCOUNT_KEY": ACCOUNT_KEY}

    def start(self) -> None:
        """Start the service (in memory: nothing on disk; run in ``workdir``) and wait until it accepts
        connections."""
        self.workdir.mkdir(parents=True, exist_ok=True)
        log = (self.workdir / "azurite.log").open("wb")
        self.proc = subprocess.Popen(
            [str(azurite_blob()), "--blobHost", "127.0.0.1", "--blobPort", str(self.port), "--inMemoryPersistence",
             "--disableTelemetry", "--skipApiVersionCheck", "--loose", "--silent"],
            stdout=log, stderr=subprocess.STDOUT, cwd=self.workdir,
        )
        log.close()
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"azurite-blob exited: {(self.workdir / 'azurite.log').read_text()[-500:]}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                    return
            except OSError:
                time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"azurite-blob on port {self.port} did not start within 60 s")

    def stop(self) -> None:
        """Stop the service (its data is in memory: gone)."""
        if self.proc is not None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
            self.proc = None

    def create_container(self, name: str) -> None:
        """Create a blob container (obstore cannot): one Shared Key signed PUT."""
        date = email.utils.formatdate(usegmt=True)
        # Shared Key string-to-sign: verb, eleven empty standard headers, the x-ms-* headers, then
        # the resource (path-style: the account twice) with its query parameters.
        string_to_sign = "\n".join(["PUT", *[""] * 11, f"x-ms-date:{date}", f"x-ms-version:{_API_VERSION}",
                                    f"/{ACCOUNT}/{ACCOUNT}/{name}\nrestype:container"])
        digest = hmac.new(base64.b64decode(ACCOUNT_KEY), string_to_sign.encode(), hashlib.sha256).digest()
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        try:
            conn.request("PUT", f"/{ACCOUNT}/{name}?restype=container", headers={
                "x-ms-date": date, "x-ms-version": _API_VERSION, "Content-Length": "0",
                "Authorization": f"SharedKey {ACCOUNT}:{base64.b64encode(digest).decode()}"})
            status = conn.getresponse().status
        finally:
            conn.close()
        if status not in (201, 409):  # 409: it exists already
            raise RuntimeError(f"Azurite refused to create container {name!r}: HTTP {status}")

    def __enter__(self) -> Azurite:
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
