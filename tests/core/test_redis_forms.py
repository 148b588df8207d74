"""Redis beyond one plain instance: TLS (``rediss://``) and Sentinel (``redis+sentinel://``), each
against real redis-server processes, carrying real messages through the broker."""

from __future__ import annotations

import datetime
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from dramatiq import Worker

from tests.conftest import free_port
from workers.core.broker import make_broker
from workers.core.redisclient import redis_client, sentinel_parts
from workers.core.settings import Settings, SettingsError


def _wait_port(port: int) -> None:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing listens on {port}")


def _server(args: list[str]) -> subprocess.Popen[bytes]:
    binary = shutil.which("redis-server")
    assert binary, "redis-server is installed by .ci/run"
    return subprocess.Popen([binary, *args], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def _round_trip(url: str) -> list[int]:
    """Send three messages through the broker on ``url`` and process them with a worker."""
    import dramatiq

    settings = Settings.from_env({}, broker_url=url)
    broker = make_broker(settings)
    done: list[int] = []

    @dramatiq.actor(queue_name="sink", actor_name="note", broker=broker)
    def note(n: int) -> None:
        done.append(n)

    for n in range(3):
        note.send(n)
    worker = Worker(broker, worker_threads=1, worker_timeout=100)
    worker.start()
    try:
        deadline = time.monotonic() + 15
        while len(done) < 3 and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        worker.stop(5_000)
        broker.close()
    return sorted(done)


def _certificates(directory: Path) -> tuple[Path, Path, Path]:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.UTC)
    import ipaddress

    cert = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "redis.crt", directory / "redis.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_path, key_path, cert_path


@pytest.fixture
def tls_redis(tmp_path: Path) -> Iterator[tuple[int, Path]]:
    cert, key, ca = _certificates(tmp_path)
    port = free_port()
    proc = _server(["--port", "0", "--tls-port", str(port), "--tls-cert-file", str(cert), "--tls-key-file",
                    str(key), "--tls-ca-cert-file", str(ca), "--tls-auth-clients", "no", "--save", "",
                    "--bind", "127.0.0.1", "--requirepass", "s3cret", "--dir", str(tmp_path)])
    try:
        _wait_port(port)
        yield port, ca
    finally:
        proc.kill()
        proc.wait(5)


def test_rediss_carries_messages_over_tls(tls_redis: tuple[int, Path]) -> None:
    port, ca = tls_redis
    url = f"rediss://:s3cret@127.0.0.1:{port}/0?ssl_ca_certs={ca}"
    assert redis_client(url).ping() is True
    assert _round_trip(url) == [0, 1, 2]
    plain = redis_client(f"redis://:s3cret@127.0.0.1:{port}/0", socket_timeout=2)
    with pytest.raises(Exception):  # noqa: B017 - the point is that plain text is refused, however it fails
        plain.ping()


def test_sentinel_urls_parse_and_bad_ones_are_refused() -> None:
    sentinels, name, db, password, query = sentinel_parts(
        "redis+sentinel://:pw@10.0.0.1:26379,10.0.0.2/mymaster/3?sentinel_password=x")
    assert sentinels == [("10.0.0.1", 26379), ("10.0.0.2", 26379)] and (name, db, password) == ("mymaster", 3, "pw")
    assert query == {"sentinel_password": "x"}
    with pytest.raises(ValueError, match="names the master"):
        sentinel_parts("redis+sentinel://10.0.0.1:26379")
    assert Settings.from_env({}, broker_url="redis+sentinel://h:26379/m/0").broker_url.startswith("redis+sentinel")
    with pytest.raises(SettingsError, match=r"redis\+sentinel://"):
        Settings.from_env({}, broker_url="amqp://h/")


def test_sentinel_finds_the_master_and_follows_a_failover(tmp_path: Path) -> None:
    master_port, replica_port, sentinel_port = free_port(), free_port(), free_port()
    procs = [
        _server(["--port", str(master_port), "--bind", "127.0.0.1", "--save", "", "--dir", str(tmp_path)]),
        _server(["--port", str(replica_port), "--bind", "127.0.0.1", "--save", "", "--dir", str(tmp_path),
                 "--replicaof", "127.0.0.1", str(master_port)]),
    ]
    conf = tmp_path / "sentinel.conf"
    conf.write_text(f"port {sentinel_port}\nbind 127.0.0.1\ndir {tmp_path}\n"
                    f"sentinel monitor mymaster 127.0.0.1 {master_port} 1\n"
                    "sentinel down-after-milliseconds mymaster 1000\nsentinel failover-timeout mymaster 5000\n")
    try:
        for port in (master_port, replica_port):
            _wait_port(port)
        procs.append(_server([str(conf), "--sentinel"]))
        _wait_port(sentinel_port)
        url = f"redis+sentinel://127.0.0.1:{sentinel_port}/mymaster/0"
        client = redis_client(url, socket_timeout=2)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:  # the replica must have synced before the master dies
            info = redis_client(f"redis://127.0.0.1:{replica_port}/0").info("replication")
            if info.get("master_link_status") == "up":
                break
            time.sleep(0.2)
        assert _round_trip(url) == [0, 1, 2]
        client.set("before", "1")
        # Replication is asynchronous: without this the master can die before "before" reaches the replica.
        assert client.wait(1, 5000) == 1, "the replica did not acknowledge the write"
        procs[0].kill()
        procs[0].wait(5)
        started = time.monotonic()
        while time.monotonic() - started < 30:
            try:
                if client.get("before") == b"1" and client.set("after", "1"):
                    break
            except Exception:
                pass
            time.sleep(0.2)
        else:
            raise AssertionError("the client did not follow the fail-over")
        print(f"sentinel fail-over followed in {time.monotonic() - started:.1f}s")
        assert redis_client(f"redis://127.0.0.1:{replica_port}/0").get("after") == b"1", "writes go to the new master"
    finally:
        for proc in procs:
            proc.kill()
            proc.wait(5)
