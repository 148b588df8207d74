"""One way to open Redis from ``INGEST_BROKER_URL``: a single server, TLS, or through Sentinel.

- ``redis://[:password@]host:6379/0`` and ``unix:///path/redis.sock?db=0``: one server;
- ``rediss://[:password@]host:6380/0[?ssl_ca_certs=/ca.pem]``: TLS (managed Redis services);
- ``redis+sentinel://[:password@]host1:26379,host2:26379/mymaster/0``: ask the Sentinels which
  server is the master of ``mymaster`` and follow it through fail-overs (``rediss+sentinel://`` for
  TLS to the master and the Sentinels).  The password is the master's; ``?sentinel_password=`` sets
  the Sentinels' own when they have one.

Every worker, command and the metrics server opens its client here, so the three forms work
everywhere the broker URL is read.
"""

from __future__ import annotations

from typing import Any, cast
from urllib.parse import parse_qs, unquote, urlsplit

import redis
from redis.sentinel import Sentinel

__all__ = ["SENTINEL_SCHEMES", "redis_client", "sentinel_parts"]

SENTINEL_SCHEMES = ("redis+sentinel", "rediss+sentinel")


def sentinel_parts(url: str) -> tuple[list[tuple[str, int]], str, int, str | None, dict[str, str]]:
    """(sentinels, service name, db, password, query) of a ``redis+sentinel://`` URL."""
    parts = urlsplit(url)
    userinfo, _, hosts = parts.netloc.rpartition("@")
    password = unquote(userinfo.split(":", 1)[1]) if ":" in userinfo else (unquote(userinfo) or None)
    sentinels = []
    for item in hosts.split(","):
        host, _, port = item.strip().rpartition(":") if ":" in item else (item.strip(), "", "26379")
        if not host:
            raise ValueError(f"sentinel address {item!r} needs a host")
        sentinels.append((host.strip("[]"), int(port or 26379)))
    path = [p for p in parts.path.split("/") if p]
    if not path:
        raise ValueError("a redis+sentinel:// URL names the master after the hosts: …/mymaster/0")
    db = int(path[1]) if len(path) > 1 else 0
    query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
    return sentinels, path[0], db, password or None, query


def redis_client(url: str, **options: Any) -> Any:
    """A redis-py client for ``url`` (see the module docstring); ``options`` such as socket timeouts."""
    scheme = url.split("://", 1)[0].lower()
    if scheme not in SENTINEL_SCHEMES:
        return redis.Redis.from_url(url, **options)
    sentinels, service, db, password, query = sentinel_parts(url)
    tls = scheme.startswith("rediss")
    common: dict[str, Any] = dict(options)
    if tls:
        common["ssl"] = True
        if "ssl_ca_certs" in query:
            common["ssl_ca_certs"] = query["ssl_ca_certs"]
    sentinel_kwargs = {k: v for k, v in common.items() if k.startswith(("socket_", "ssl"))}
    if "sentinel_password" in query:
        sentinel_kwargs["password"] = query["sentinel_password"]
    # Called through Any: redis-py types Sentinel from 8.2 on and not before, and both are in use.
    factory: Any = Sentinel
    sentinel = factory(sentinels, sentinel_kwargs=sentinel_kwargs, **common)
    return cast(redis.Redis, sentinel.master_for(service, db=db, password=password))
