"""What the fetch stage needs from the process it runs in, named as a protocol.

The stage is wired by the pipeline's runtime, but it must not import the pipeline (imports run
one way: pipeline -> stages).  Any object with these members will do: the pipeline's ``Runtime``,
or a smaller one in a test.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

import httpx

from workers.core.settings import Settings
from workers.core.storage import Storage
from workers.fetch.politeness import HostPolicy
from workers.fetch.robots import RobotsCache
from workers.fetch.validators import Validators

__all__ = ["FetchContext"]


class FetchContext(Protocol):
    """The shared services one fetch uses: settings, HTTP client, host policy, caches, storage, sending."""

    settings: Settings
    storage: Storage
    policy: HostPolicy
    robots: RobotsCache
    validators: Validators
    log: Any

    @property
    def send(self) -> Callable[[str, dict[str, Any]], None]:
        """Send a message to a stage's queue now."""

    @property
    def send_later(self) -> Callable[[str, dict[str, Any], int], None]:
        """Send a message to a stage's queue after a delay in milliseconds."""

    @property
    def client(self) -> httpx.Client:
        """The process's HTTP client."""

    def outcome(self, event: str, **fields: Any) -> None:
        """Count one outcome and write its log line."""

    def give_up(self, stage: str, reason: str, error: str, message: dict[str, Any], **fields: Any) -> None:
        """Dead-letter a message the stage settled as a permanent failure."""
