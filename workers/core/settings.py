"""One settings object, read once from ``INGEST_*`` environment variables.

Every knob the pipeline has lives here with its default, so an operator finds them in one
place (README's configuration table is generated from the same field list) and a typo in a
value fails at start-up instead of in the middle of a crawl.
"""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from typing import Any

__all__ = ["ENV_PREFIX", "Settings", "SettingsError"]

ENV_PREFIX = "INGEST_"


class SettingsError(ValueError):
    """A setting has a value that cannot be used; the message names the variable."""


def _parse_bool(name: str, raw: str) -> bool:
    value = raw.strip().lower()
    if value in {"1", "true", "yes", "on"}:
        return True
    if value in {"0", "false", "no", "off", ""}:
        return False
    raise SettingsError(f"{name}={raw!r}: expected 1/0, true/false, yes/no or on/off")


def _parse_networks(name: str, raw: str) -> tuple[str, ...]:
    nets = []
    for part in raw.split(","):
        part = part.strip()
        if not part:
            continue
        try:
            nets.append(str(ipaddress.ip_network(part, strict=False)))
        except ValueError as exc:
            raise SettingsError(f"{name}: {part!r} is not a CIDR network ({exc})") from None
    return tuple(nets)


@dataclass(frozen=True)
class Settings:
    """Runtime configuration of every stage; build it with :meth:`from_env`."""

    #: ``memory://`` runs everything in one process; ``redis://host:6379/0`` scales out.
    broker_url: str = field(default="memory://", metadata={"doc": "broker: memory:// or redis://…"})
    #: A folder, ``file://…``, ``s3://bucket/prefix`` or ``memory://``.
    storage_url: str = field(default="./ingest-data", metadata={"doc": "where records and raw pages go"})
    s3_endpoint: str | None = field(default=None, metadata={"doc": "S3 endpoint URL (MinIO, moto, …)"})
    log_format: str = field(default="auto", metadata={"doc": "auto (console on a TTY, else json), json, console"})
    log_level: str = field(default="info", metadata={"doc": "debug, info, warning, error"})
    allow_private: bool = field(default=False, metadata={"doc": "allow loopback and private ranges"})
    allow_networks: tuple[str, ...] = field(
        default=(), metadata={"doc": "CIDRs allowed even if link-local/metadata (comma-separated)"}
    )
    host_rate: float = field(default=1.0, metadata={"doc": "requests per second per host; 0 = no limit"})
    host_concurrency: int = field(default=4, metadata={"doc": "requests in flight per host, across all workers"})
    respect_robots: bool = field(default=True, metadata={"doc": "obey robots.txt (Disallow, Crawl-delay)"})
    max_crawl_delay: float = field(
        default=60.0, metadata={"doc": "longest robots.txt Crawl-delay honoured, in seconds; longer ones are capped"}
    )
    max_retry_after: float = field(
        default=300.0,
        metadata={
            "doc": "longest Retry-After honoured, in seconds; longer ones are capped and the host recorded as slow"
        },
    )
    user_agent: str = field(
        default="ingest/0.1 (+https://github.com/ingest-news/ingest)",
        metadata={"doc": "User-Agent header, with a contact URL"},
    )
    connect_timeout: float = field(default=10.0, metadata={"doc": "seconds to connect"})
    read_timeout: float = field(default=20.0, metadata={"doc": "seconds between bytes"})
    request_timeout: float = field(default=60.0, metadata={"doc": "seconds for a whole request"})
    max_bytes: int = field(default=10_000_000, metadata={"doc": "largest page body downloaded"})
    max_redirects: int = field(default=5, metadata={"doc": "redirect hops followed"})
    fetch_retries: int = field(default=4, metadata={"doc": "retries of a transient fetch failure"})
    page_time_limit: float = field(
        default=5.0,
        metadata={"doc": "seconds one page may take in discovery or extraction (a killable child process); "
                  "over it the page ends as <stage>.timeout and is dead-lettered"},
    )
    storage_retry_for: float = field(
        default=6 * 3600.0,
        metadata={"doc": "seconds a message keeps retrying (backing off) while object storage is down"},
    )
    # A live worker heartbeats from its consumer threads, which page parsing (in a child process)
    # never blocks; what can still freeze it is a GC pause, a starved CPU or a stopped container.
    # 30 s rides those out, and must stay well above the per-page limit (validated).
    heartbeat_timeout_ms: int = field(
        default=30_000, metadata={"doc": "ms without heartbeat before a worker counts as dead (>= 3x page limit)"}
    )
    maintenance_chance: int = field(
        default=250_000, metadata={"doc": "per-million chance a broker command requeues dead work"}
    )
    namespace: str = field(default="ingest", metadata={"doc": "prefix of every Redis key"})
    metrics_port: int = field(
        default=0,
        metadata={"doc": "port of the Prometheus /metrics, /healthz, /readyz server of `ingest worker`; 0 = off"},
    )
    metrics_host: str = field(default="0.0.0.0", metadata={"doc": "address the metrics server listens on"})
    poll_ms: int = field(default=200, metadata={"doc": "ms an idle worker waits between polls of its queues"})
    seen_backend: str = field(
        default="exact", metadata={"doc": "seen-set: exact (Redis hash) or bloom (Redis bitmap, ~1.8 MB per million)"}
    )
    bloom_capacity: int = field(default=10_000_000, metadata={"doc": "URLs per crawl the Bloom filter is sized for"})
    bloom_error: float = field(default=0.001, metadata={"doc": "Bloom filter false-positive rate"})
    seen_poll_ttl: int = field(
        default=21600, metadata={"doc": "seconds a poll round's seen-set outlives its last claim; 0 = for ever"}
    )
    page_processes: int = field(
        default=0,
        metadata={"doc": "page-parsing child processes per `ingest worker` process; 0 = one and a half per CPU"},
    )
    probes: bool = field(
        default=True,
        metadata={"doc": "follow links whose URL shape says nothing as probes, their page judged by its content"},
    )

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, **overrides: Any) -> Settings:
        """Read ``INGEST_<FIELD>`` variables; ``overrides`` (from CLI flags) win over the environment."""
        env = os.environ if env is None else env
        values: dict[str, Any] = {}
        for f in fields(cls):
            name = ENV_PREFIX + f.name.upper()
            if name not in env:
                continue
            values[f.name] = _coerce(name, f.type, env[name])
        values.update({k: v for k, v in overrides.items() if v is not None})
        settings = cls(**values)
        settings.validate()
        return settings

    def with_overrides(self, **overrides: Any) -> Settings:
        """A copy with the given non-``None`` values replaced, validated again."""
        new = replace(self, **{k: v for k, v in overrides.items() if v is not None})
        new.validate()
        return new

    def validate(self) -> None:
        """Fail fast on values no stage could use."""
        if not self.broker_url.startswith(("memory://", "redis://", "rediss://", "unix://", "redis+sentinel://",
                                           "rediss+sentinel://")):
            raise SettingsError(
                f"INGEST_BROKER_URL={redact_url(self.broker_url)!r}: "
                "expected memory://, redis://, rediss://, unix:// or redis+sentinel://host:26379,…/master/db"
            )
        if self.log_format not in {"auto", "json", "console"}:
            raise SettingsError(f"INGEST_LOG_FORMAT={self.log_format!r}: expected auto, json or console")
        if self.log_level.lower() not in {"debug", "info", "warning", "error"}:
            raise SettingsError(f"INGEST_LOG_LEVEL={self.log_level!r}: expected debug, info, warning or error")
        for name in ("host_rate", "connect_timeout", "read_timeout", "request_timeout", "max_crawl_delay"):
            if getattr(self, name) < 0:
                raise SettingsError(f"INGEST_{name.upper()} must not be negative")
        # Not inf or nan either: the capped value becomes a message delay in milliseconds.
        if not 0 <= self.max_retry_after < float("inf"):
            raise SettingsError("INGEST_MAX_RETRY_AFTER must be a number of seconds, not negative")
        if self.seen_backend not in {"exact", "bloom"}:
            raise SettingsError(f"INGEST_SEEN_BACKEND={self.seen_backend!r}: expected exact or bloom")
        if self.bloom_capacity < 1 or not 0 < self.bloom_error < 1:
            raise SettingsError("INGEST_BLOOM_CAPACITY must be positive and INGEST_BLOOM_ERROR between 0 and 1")
        if self.seen_poll_ttl < 0:
            raise SettingsError("INGEST_SEEN_POLL_TTL must not be negative (0 keeps poll rounds' seen-sets)")
        if not 0 <= self.page_processes <= 1024:
            raise SettingsError("INGEST_PAGE_PROCESSES must be between 0 (one and a half per CPU) and 1024")
        if not 10 <= self.poll_ms <= 10_000:
            raise SettingsError("INGEST_POLL_MS must be between 10 and 10000")
        if self.page_time_limit <= 0 or self.storage_retry_for < 0:
            raise SettingsError("INGEST_PAGE_TIME_LIMIT must be positive and INGEST_STORAGE_RETRY_FOR not negative")
        if self.heartbeat_timeout_ms < 3 * self.page_time_limit * 1000:
            raise SettingsError(
                f"INGEST_HEARTBEAT_TIMEOUT_MS={self.heartbeat_timeout_ms} must be at least 3x INGEST_PAGE_TIME_LIMIT "
                f"({self.page_time_limit:g} s): a worker busy with one slow page would otherwise lose it to another"
            )
        if not 0 <= self.metrics_port <= 65535:
            raise SettingsError(f"INGEST_METRICS_PORT={self.metrics_port}: expected a TCP port (0 = off)")
        if self.host_concurrency < 1:
            raise SettingsError("INGEST_HOST_CONCURRENCY must be at least 1")
        if self.max_bytes <= 0 or self.max_redirects < 0 or self.fetch_retries < 0:
            raise SettingsError("INGEST_MAX_BYTES must be positive, redirects and retries not negative")

    @property
    def embedded(self) -> bool:
        """True when the broker lives inside this process."""
        return self.broker_url.startswith("memory://")

    def redacted(self) -> dict[str, Any]:
        """The settings as a dict safe to log: credentials in URLs are masked."""
        out: dict[str, Any] = {}
        for f in fields(self):
            value = getattr(self, f.name)
            out[f.name] = redact_url(value) if isinstance(value, str) and "://" in value else value
        return out


def redact_url(url: str) -> str:
    """Mask the credentials in a URL so they never reach a log, an error or the CLI's output.

    ``scheme://user:password@host`` keeps the user (``user:***@host``); a user name alone is
    masked whole (it is often a token).  Secret-looking query and fragment parameters
    (``password``, ``token``, ``key``, ``X-Amz-Signature``, …) keep their names: ``?password=***&a=1``.
    A string that is not a URL comes back unchanged.
    """
    from urllib.parse import unquote

    scheme, sep, rest = url.partition("://")
    if not sep:
        return url
    cut = next((i for i, c in enumerate(rest) if c in "/?#"), len(rest))
    # Passwords pasted unencoded often hold an "@": the userinfo ends at the authority's last one.
    at = rest.rfind("@", 0, cut)
    colon = rest.find(":", 0, cut)
    if at < 0 and colon >= 0 and not rest.startswith("[") and not rest[colon + 1 : cut].isdigit():
        # Not host:port, so a "/", "?" or "#" inside a password ended the authority early
        # ("user:pa/ss@host"): the userinfo runs to the last "@" of the next "@"-joined stretch.
        at = rest.find("@", cut)
        while at >= 0:
            nxt = rest.find("@", at + 1)
            if nxt < 0 or any(c in "/?#" for c in rest[at + 1 : nxt]):
                break
            at = nxt
    if at >= 0:
        userinfo, tail = rest[:at], rest[at + 1 :]
        user, has_password, _ = userinfo.partition(":")
        head = f"{user}:***@" if has_password and user else "***@"
    else:
        head, tail = "", rest
    path_end = next((i for i, c in enumerate(tail) if c in "?#"), len(tail))
    path, extra = tail[:path_end], tail[path_end:]
    query, hash_, fragment = extra.partition("#")

    secret_names = {"pass", "passwd", "password", "pwd", "token", "secret", "key", "apikey", "auth", "sig",
                    "signature", "credential", "credentials"}

    def mask_params(part: str) -> str:
        pairs = []
        for pair in part.split("&"):
            name, eq, value = pair.partition("=")
            norm = unquote(name).strip().lower().replace("-", "_")
            # "_key" and friends: api_key, access_key, secret_key, x_amz_signature, client_secret, …
            if eq and (norm in secret_names or norm.rsplit("_", 1)[-1] in secret_names):
                pair = f"{name}=***"
            elif eq and "://" in value:
                pair = f"{name}={redact_url(value)}"
            pairs.append(pair)
        return "&".join(pairs)

    if query:
        query = "?" + mask_params(query[1:])
    if hash_:
        fragment = mask_params(fragment)
    return f"{scheme}://{head}{path}{query}{hash_}{fragment}"


def _coerce(name: str, typ: Any, raw: str) -> Any:
    typ = str(typ)
    try:
        if typ == "bool":
            return _parse_bool(name, raw)
        if typ == "int":
            return int(raw)
        if typ == "float":
            return float(raw)
    except ValueError:
        raise SettingsError(f"{name}={raw!r}: expected a number") from None
    if typ.startswith("tuple"):
        return _parse_networks(name, raw)
    if typ == "str | None":
        return raw or None
    return raw
