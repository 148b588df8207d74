"""No credential in a URL reaches a log line, an error message or ``ingest config``/``status`` output."""

from __future__ import annotations

import io
import logging
import os
import subprocess
import sys
from typing import Any

import orjson
import pytest

from tests.support.pipeline import ROOT
from workers.core import logs
from workers.core.logs import get_logger
from workers.core.settings import Settings, SettingsError, redact_url


@pytest.mark.parametrize(
    ("url", "masked"),
    [
        ("redis://:pw@h", "redis://***@h"),
        ("redis://user:pw@h", "redis://user:***@h"),
        ("redis://user:pw@host:6379/0", "redis://user:***@host:6379/0"),
        # The userinfo ends at the last "@" before the host: the password is "p@ss".
        ("redis://user:p@ss@h:6379/0", "redis://user:***@h:6379/0"),
        ("rediss://default:p@ss:w0rd@cache.example:6380/2", "rediss://default:***@cache.example:6380/2"),
        ("redis://u:p%40ss@127.0.0.1:1/0", "redis://u:***@127.0.0.1:1/0"),
        # "/", "?" or "#" in an unencoded password end the authority early; still masked.
        ("redis://u:pa/ss@h/0", "redis://u:***@h/0"),
        ("redis://:pa#ss@h", "redis://***@h"),
        # A user name alone is often a token (https://<token>@github.com): masked whole.
        ("https://ghp_abc123@github.com/org/repo", "https://***@github.com/org/repo"),
        ("https://h/x?password=pw&a=1", "https://h/x?password=***&a=1"),
        ("https://h/x?a=1&PassWord=pw", "https://h/x?a=1&PassWord=***"),
        (
            "https://minio.example:9000/b/k?X-Amz-Algorithm=AWS4-HMAC-SHA256"
            "&X-Amz-Credential=AKIAEXAMPLE%2F20240101%2Fus-east-1%2Fs3%2Faws4_request&X-Amz-Signature=abcdef0123",
            "https://minio.example:9000/b/k?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=***&X-Amz-Signature=***",
        ),
        ("https://u:pw@h/x?token=t0k&page=2#frag", "https://u:***@h/x?token=***&page=2#frag"),
        ("https://h/cb#access_token=t0k&state=s", "https://h/cb#access_token=***&state=s"),
        # A URL inside a query value is masked too.
        ("https://h/go?to=redis://u:pw@r/0", "https://h/go?to=redis://u:***@r/0"),
    ],
)  # fmt: skip
def test_redact_url_masks_every_credential_form(url: str, masked: str) -> None:
    assert redact_url(url) == masked


@pytest.mark.parametrize(
    "name",
    ["password", "pass", "pwd", "token", "secret", "key", "access_key", "secret_key", "auth", "sig", "signature",
     "X-Amz-Signature", "X-Amz-Credential", "api_key", "API_KEY", "Token"],
)  # fmt: skip
def test_redact_url_masks_secret_query_parameters(name: str) -> None:
    assert redact_url(f"https://h/x?a=1&{name}=s3cr3t&b=2") == f"https://h/x?a=1&{name}=***&b=2"


@pytest.mark.parametrize(
    "value",
    ["memory://", "redis://127.0.0.1:6379/0", "https://medium.com/@writer/post", "https://h/x?email=a@b.example",
     "https://[::1]:8080/x?page=2", "ingest/0.1 (+https://github.com/ingest-news/ingest)", "not a url"],
)  # fmt: skip
def test_redact_url_leaves_urls_without_credentials_alone(value: str) -> None:
    assert redact_url(value) == value


def test_redact_text_masks_urls_inside_text() -> None:
    text = "Error connecting to 'redis://u:hunter2@h:6379/0': refused; see https://h/x?token=t0k."
    assert logs.redact_text(text) == "Error connecting to 'redis://u:***@h:6379/0': refused; see https://h/x?token=***."


def test_bad_scheme_error_does_not_echo_the_password() -> None:
    with pytest.raises(SettingsError) as caught:
        Settings.from_env({"INGEST_BROKER_URL": "amqp://u:secret@h"})
    message = str(caught.value)
    assert "secret" not in message
    assert "INGEST_BROKER_URL" in message and "amqp://u:***@h" in message


def test_redacted_settings_mask_every_url_field() -> None:
    settings = Settings(broker_url="redis://u:p@ss@h:6379/0", s3_endpoint="https://m:9000/?X-Amz-Signature=sig0",
                        storage_url="s3://bucket/prefix")
    shown = str(settings.redacted())
    assert "ss@h" not in shown and "sig0" not in shown
    assert "redis://u:***@h:6379/0" in shown


def _lines(stream: io.StringIO) -> list[dict[str, Any]]:
    return [orjson.loads(line) for line in stream.getvalue().splitlines() if line.strip()]


def test_log_fields_and_exception_text_carry_no_credentials(json_log: io.StringIO) -> None:
    log = get_logger()
    log.info("fetch.done", url="https://h/a?token=t0k3n&page=2", broker="redis://u:hunter2@h:6379/0",
             nested={"urls": ["rediss://:hunter2@h"]})
    try:
        raise ConnectionError("cannot reach redis://user:p@ss-hunter2@h:6379/0")
    except ConnectionError:
        log.exception("broker.down")
    log.warning("fetch.retry", error=ConnectionError("via https://u:hunter2@h/x"))
    lines = _lines(json_log)
    assert [e["event"] for e in lines] == ["fetch.done", "broker.down", "fetch.retry"]
    raw = json_log.getvalue()
    assert "hunter2" not in raw and "t0k3n" not in raw
    assert lines[0]["url"] == "https://h/a?token=***&page=2"
    assert lines[0]["broker"] == "redis://u:***@h:6379/0"
    assert lines[0]["nested"] == {"urls": ["rediss://***@h"]}
    assert "ConnectionError" in lines[1]["exception"] and "redis://user:***@h:6379/0" in lines[1]["exception"]
    assert lines[2]["error"] == "via https://u:***@h/x"


def test_stdlib_log_lines_carry_no_credentials(json_log: io.StringIO) -> None:
    lib = logging.getLogger("dramatiq.test")
    lib.warning("lost connection to %s", "redis://u:hunter2@h:6379/0")
    try:
        raise OSError("redis://:hunter2@h refused")
    except OSError:
        lib.exception("consumer crashed")
    raw = json_log.getvalue()
    assert "hunter2" not in raw
    lines = _lines(json_log)
    assert lines[0]["event"] == "lost connection to redis://u:***@h:6379/0"
    assert "redis://***@h refused" in lines[1]["exception"]


def _ingest(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith("INGEST_")}
    return subprocess.run([sys.executable, "-m", "workers.cli", *args], env={**base, **env}, cwd=ROOT,
                          capture_output=True, text=True, timeout=60, check=False)


@pytest.mark.parametrize(
    ("env", "secrets", "shown"),
    [
        ({"INGEST_BROKER_URL": "redis://u:p%40ss@127.0.0.1:1/0"}, ["p%40ss"], "redis://u:***@127.0.0.1:1/0"),
        ({"INGEST_BROKER_URL": "redis://u:p@ss-x@127.0.0.1:1/0"}, ["p@ss", "ss-x"], "redis://u:***@127.0.0.1:1/0"),
        ({"INGEST_S3_ENDPOINT": "https://127.0.0.1:1/?X-Amz-Signature=sigvalue&X-Amz-Credential=credvalue"},
         ["sigvalue", "credvalue"], "X-Amz-Signature=***&X-Amz-Credential=***"),
        ({"INGEST_STORAGE_URL": "https://u:pw-x@127.0.0.1:1/bucket?password=pw-y&a=1"}, ["pw-x", "pw-y"],
         "https://u:***@127.0.0.1:1/bucket?password=***&a=1"),
    ],
)  # fmt: skip
def test_ingest_config_masks_credentials(env: dict[str, str], secrets: list[str], shown: str) -> None:
    done = _ingest("config", **env)
    assert done.returncode == 0, done.stderr
    for secret in secrets:
        assert secret not in done.stdout + done.stderr
    assert shown in done.stdout


def test_ingest_config_bad_scheme_error_masks_the_password() -> None:
    done = _ingest("config", INGEST_BROKER_URL="amqp://u:hunter2@127.0.0.1:1")
    assert done.returncode == 2
    assert "hunter2" not in done.stdout + done.stderr
    assert "amqp://u:***@127.0.0.1:1" in done.stderr


def test_ingest_status_error_masks_the_password() -> None:
    # Port 1 on loopback refuses at once: status fails and names the broker it could not read.
    done = _ingest("status", INGEST_BROKER_URL="redis://u:p@ss-hunter2@127.0.0.1:1/0")
    assert done.returncode == 2
    assert "hunter2" not in done.stdout + done.stderr
    assert "redis://u:***@127.0.0.1:1/0" in done.stderr
