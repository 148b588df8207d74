"""The private-address guard: the policy on many addresses, and the guard on real connections.

Anything that would reach a non-loopback address if the guard were broken runs in a child process
inside a fresh network namespace (``unshare -n``) whose only interface is ``lo``, carrying
127.0.0.1 plus 10.0.0.1 and 169.254.169.254 as aliases with our own test servers on them.  A
broken guard there connects to our fake "private" and "metadata" servers (and the test sees it)
instead of to anything real.  Everything else talks to 127.0.0.1 only.
"""

from __future__ import annotations

import datetime
import json
import socket
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpcore
import httpx
import pytest

from tests.support.hostile_server import PAGE, HostileServer
from workers.core.settings import Settings
from workers.fetch.client import FetchResult, fetch_page
from workers.fetch.netguard import (
    AddressPolicy,
    BlockedAddress,
    GuardedBackend,
    build_client,
)

REPO = Path(__file__).resolve().parents[2]


def fast(**overrides: Any) -> Settings:
    """Settings with timeouts short enough for tests."""
    return Settings(connect_timeout=1.0, read_timeout=1.0, **overrides)


# -- the policy, address by address ------------------------------------------------------------

PUBLIC = [
    "93.184.216.34", "8.8.8.8", "1.1.1.1", "172.32.0.1", "172.15.255.255", "100.128.0.1",
    "100.63.255.255", "11.0.0.1", "2606:4700:4700::1111", "2a00:1450:4001:80b::200e",
    "::ffff:8.8.8.8", "2002:808:808::1", "64:ff9b::808:808",
]  # fmt: skip
ALWAYS_REFUSED = [
    "169.254.169.254", "169.254.0.1", "169.254.255.255", "fe80::1", "fe80::1%eth0", "fd00:ec2::254",
    "100.100.100.200", "224.0.0.1", "239.255.255.250", "ff02::1", "0.0.0.0", "::", "240.0.0.1",
    "255.255.255.255", "::ffff:169.254.169.254", "::ffff:0.0.0.0", "::ffff:224.0.0.251",
    "::ffff:100.100.100.200", "64:ff9b::a9fe:a9fe", "2002:a9fe:a9fe::1", "::7f00:1", "::a00:1",
]  # fmt: skip
PRIVATE = [
    "127.0.0.1", "127.255.255.254", "::1", "10.0.0.1", "10.255.255.255", "172.16.0.1",
    "172.31.255.255", "192.168.1.1", "100.64.0.1", "100.127.255.254", "fc00::1", "fd12:3456::1",
    "::ffff:127.0.0.1", "::ffff:10.0.0.1", "::ffff:192.168.0.1", "::ffff:172.20.0.5",
    "::ffff:100.64.1.1", "0.1.2.3", "2002:7f00:1::1", "64:ff9b::a00:1", "fec0::1",
    "192.0.2.1", "198.18.0.1", "2001:db8::1",
]  # fmt: skip


@pytest.mark.parametrize("ip", PUBLIC)
def test_public_addresses_are_allowed(ip: str) -> None:
    assert AddressPolicy().reason(ip) is None
    AddressPolicy().check(ip)


@pytest.mark.parametrize("ip", ALWAYS_REFUSED)
def test_link_local_metadata_multicast_and_reserved_are_refused_even_with_allow_private(ip: str) -> None:
    assert AddressPolicy().reason(ip) is not None
    assert AddressPolicy(allow_private=True).reason(ip) is not None
    with pytest.raises(BlockedAddress):
        AddressPolicy(allow_private=True).check(ip)


@pytest.mark.parametrize("ip", PRIVATE)
def test_private_ranges_are_refused_by_default_and_allowed_by_allow_private(ip: str) -> None:
    reason = AddressPolicy().reason(ip)
    assert reason is not None and "allow_private" in reason
    assert AddressPolicy(allow_private=True).reason(ip) is None


def test_reasons_name_what_the_address_is() -> None:
    policy = AddressPolicy()
    assert policy.reason("169.254.169.254") == "169.254.169.254 is a cloud metadata address"
    assert policy.reason("100.100.100.200") == "100.100.100.200 is a cloud metadata address"
    assert "link-local" in (policy.reason("169.254.1.1") or "")
    assert "RFC 1918" in (policy.reason("192.168.0.1") or "")
    assert "carrier-grade NAT" in (policy.reason("100.64.0.1") or "")
    mapped = policy.reason("::ffff:10.0.0.1") or ""
    assert "reaches 10.0.0.1" in mapped and "RFC 1918" in mapped
    assert policy.reason("not-an-ip") == "'not-an-ip' is not an IP address"


def test_allow_networks_opens_a_range_even_if_it_is_always_refused() -> None:
    policy = AddressPolicy(allow_networks=("169.254.0.0/16",))
    assert policy.reason("169.254.169.254") is None
    assert policy.reason("::ffff:169.254.169.254") is None
    assert policy.reason("fe80::1") is not None
    assert policy.reason("127.0.0.1") is not None  # allow_private is still off


def test_allow_networks_is_exactly_the_listed_range() -> None:
    policy = AddressPolicy(allow_networks=("10.1.0.0/16", "fd00:1::/32"))
    assert policy.reason("10.1.2.3") is None
    assert policy.reason("10.2.0.1") is not None
    assert policy.reason("fd00:1::5") is None
    assert policy.reason("fd00:2::5") is not None


def test_allow_private_does_not_open_metadata() -> None:
    assert AddressPolicy(allow_private=True).reason("169.254.169.254") is not None
    assert AddressPolicy(allow_private=True, allow_networks=("169.254.0.0/16",)).reason("169.254.169.254") is None


def test_a_bad_cidr_fails_when_the_policy_is_built() -> None:
    with pytest.raises(ValueError):
        AddressPolicy(allow_networks=("10.0.0.0/33",))


def test_blocked_address_is_an_httpx_connect_error_with_the_reason() -> None:
    with pytest.raises(BlockedAddress) as info:
        AddressPolicy().check("10.0.0.1")
    assert isinstance(info.value, httpx.ConnectError)
    assert info.value.reason == AddressPolicy().reason("10.0.0.1")
    assert "10.0.0.1" in str(info.value)


# -- the backend's name handling, without connecting ----------------------------------------------


def _resolver_that_must_not_run(host: str, port: int) -> list[str]:
    raise AssertionError(f"resolver called for {host}")


@pytest.mark.parametrize("host", ["127.0.0.1", "::1", "[::1]", "::ffff:10.0.0.1"])
def test_ip_literals_are_not_resolved(host: str) -> None:
    backend = GuardedBackend(AddressPolicy(), _resolver_that_must_not_run)
    assert len(backend.addresses(host, 80)) == 1


def test_names_are_resolved_once_and_deduplicated() -> None:
    calls: list[tuple[str, int]] = []

    def resolver(host: str, port: int) -> list[str]:
        calls.append((host, port))
        return ["127.0.0.1", "::1", "127.0.0.1"]

    backend = GuardedBackend(AddressPolicy(), resolver)
    assert backend.addresses("site.test", 8080) == ["127.0.0.1", "::1"]
    assert calls == [("site.test", 8080)]


def test_resolver_failures_are_connect_errors() -> None:
    def broken(host: str, port: int) -> list[str]:
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    with pytest.raises(httpcore.ConnectError, match="cannot resolve"):
        GuardedBackend(AddressPolicy(), broken).addresses("nowhere.test", 80)
    with pytest.raises(httpcore.ConnectError, match="no address"):
        GuardedBackend(AddressPolicy(), lambda h, p: []).addresses("empty.test", 80)


def test_unix_sockets_are_refused() -> None:
    with pytest.raises(BlockedAddress):
        GuardedBackend(AddressPolicy(allow_private=True)).connect_unix_socket("/run/docker.sock")


# -- the guarded client against a real server on 127.0.0.1 ----------------------------------------


@pytest.fixture(scope="module")
def server() -> Iterator[HostileServer]:
    with HostileServer() as srv:
        yield srv


def _table(names: dict[str, list[str]]) -> Callable[[str, int], list[str]]:
    def resolve(host: str, port: int) -> list[str]:
        if host not in names:
            raise socket.gaierror(socket.EAI_NONAME, f"{host} not in the test table")
        return names[host]

    return resolve


def test_default_settings_refuse_loopback_without_connecting(server: HostileServer) -> None:
    before = server.connections
    with build_client(fast()) as client:
        result = fetch_page(client, server.url("/html"), max_bytes=100_000, deadline_s=5)
        with pytest.raises(BlockedAddress):
            client.get(server.url("/html"))
    assert result.outcome == "refused"
    assert "loopback" in result.reason
    assert server.connections == before


def test_a_name_resolving_to_loopback_is_refused_without_connecting(server: HostileServer) -> None:
    seen: list[str] = []

    def resolver(host: str, port: int) -> list[str]:
        seen.append(host)
        return ["127.0.0.1"]

    before = server.connections
    with build_client(fast(), resolver=resolver) as client:
        result = fetch_page(client, server.url("/html", host="site.test"), max_bytes=100_000, deadline_s=5)
    assert (result.outcome, seen) == ("refused", ["site.test"])
    assert server.connections == before


def test_one_bad_address_refuses_the_whole_host_before_connecting(server: HostileServer) -> None:
    # The good address comes first, so a guard that checked only the address it connects to
    # would connect (to our server, nowhere else) instead of refusing.
    backend = GuardedBackend(AddressPolicy(allow_private=True), lambda h, p: ["127.0.0.1", "169.254.169.254"])
    before = server.connections
    with pytest.raises(BlockedAddress, match="metadata"):
        backend.connect_tcp("mixed.test", server.port, timeout=0.5)
    assert server.connections == before


def test_allow_private_permits_loopback_by_name_and_literal(server: HostileServer) -> None:
    settings = fast(allow_private=True)
    with build_client(settings, resolver=_table({"site.test": ["127.0.0.1"]})) as client:
        by_name = fetch_page(client, server.url("/html", host="site.test"), max_bytes=100_000, deadline_s=5)
        by_literal = fetch_page(client, server.url("/html"), max_bytes=100_000, deadline_s=5)
        mapped = fetch_page(client, server.url("/html", host="[::ffff:127.0.0.1]"), max_bytes=100_000, deadline_s=5)
    assert [r.outcome for r in (by_name, by_literal, mapped)] == ["ok", "ok", "ok"]
    assert by_name.body == PAGE


def test_ipv6_loopback_is_guarded_and_reachable() -> None:
    with HostileServer("::1") as v6:
        with build_client(fast()) as strict:
            refused = fetch_page(strict, v6.url("/html"), max_bytes=100_000, deadline_s=5)
        with build_client(fast(allow_private=True)) as lenient:
            allowed = fetch_page(lenient, v6.url("/html"), max_bytes=100_000, deadline_s=5)
        assert (refused.outcome, allowed.outcome) == ("refused", "ok")
        assert v6.connections == 1


def test_environment_proxies_are_ignored(server: HostileServer, monkeypatch: pytest.MonkeyPatch) -> None:
    with HostileServer() as proxy:
        for name in ("HTTP_PROXY", "http_proxy", "ALL_PROXY", "HTTPS_PROXY"):
            monkeypatch.setenv(name, proxy.url("/"))
        monkeypatch.delenv("NO_PROXY", raising=False)
        monkeypatch.delenv("no_proxy", raising=False)
        with build_client(fast(allow_private=True)) as client:
            result = fetch_page(client, server.url("/html"), max_bytes=100_000, deadline_s=5)
        assert result.outcome == "ok"
        assert proxy.connections == 0


def test_client_sends_the_configured_user_agent(server: HostileServer) -> None:
    settings = fast(allow_private=True, user_agent="ingest-test/1 (+http://example.invalid/)")
    with build_client(settings) as client:
        fetch_page(client, server.url("/html?ua"), max_bytes=100_000, deadline_s=5)
    headers = [h for path, h in server.requests if path == "/html"][-1]
    assert headers["User-Agent"] == settings.user_agent
    assert headers["Accept-Encoding"] == "gzip, deflate"


def test_client_limits_follow_the_settings() -> None:
    with build_client(Settings(max_redirects=2, connect_timeout=3, read_timeout=4)) as client:
        assert client.max_redirects == 2
        assert client.follow_redirects is True
        assert (client.timeout.connect, client.timeout.read, client.timeout.write) == (3, 4, 4)


def _self_signed(tmp_path: Path, name: str) -> tuple[str, str]:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    certfile, keyfile = tmp_path / "cert.pem", tmp_path / "key.pem"
    certfile.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    keyfile.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return str(certfile), str(keyfile)


def test_tls_uses_the_host_name_for_sni_and_certificate_not_the_checked_ip(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    certfile, keyfile = _self_signed(tmp_path, "site.test")
    monkeypatch.setenv("SSL_CERT_FILE", certfile)  # httpx's default context trusts it
    with HostileServer(certfile=certfile, keyfile=keyfile) as tls:
        settings = fast(allow_private=True)
        with build_client(settings, resolver=_table({"site.test": ["127.0.0.1"]})) as client:
            by_name = fetch_page(client, tls.url("/html", host="site.test"), max_bytes=100_000, deadline_s=5)
            # Same server by IP: the certificate names site.test, so verification must fail.
            by_ip = fetch_page(client, tls.url("/html"), max_bytes=100_000, deadline_s=5)
        assert by_name.outcome == "ok" and by_name.body == PAGE
        assert tls.sni[0] == "site.test"
        assert by_ip.outcome == "transient" and "CERTIFICATE_VERIFY_FAILED" in by_ip.reason


# -- guard checks that could leak off the machine run in a sealed network namespace -------------

PRIVATE_IP, METADATA_IP = "10.0.0.1", "169.254.169.254"


def _seal_network() -> None:
    """Inside ``unshare -n``: bring lo up and give it the private and metadata addresses."""
    import fcntl
    import struct

    if [name for _, name in socket.if_nameindex()] != ["lo"]:
        sys.exit("refusing to run: this process is not in a network namespace of its own")
    siocgifflags, siocsifflags, siocsifaddr, iff_up = 0x8913, 0x8914, 0x8916, 0x1
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        req = struct.pack("16sH22x", b"lo", 0)
        flags = struct.unpack("16sH22x", fcntl.ioctl(s, siocgifflags, req))[1]
        fcntl.ioctl(s, siocsifflags, struct.pack("16sH22x", b"lo", flags | iff_up))
        for n, ip in enumerate((PRIVATE_IP, METADATA_IP), 1):
            sockaddr = struct.pack("H2s4s8x", socket.AF_INET, b"\0\0", socket.inet_aton(ip))
            fcntl.ioctl(s, siocsifaddr, struct.pack("16s16s8x", f"lo:{n}".encode(), sockaddr))


def _isolated_main() -> None:
    """Child process entry: run every leak-prone case, print what happened as JSON."""
    _seal_network()
    connects: list[str] = []
    lookups: list[str] = []

    def audit(event: str, args: tuple[Any, ...]) -> None:
        if event == "socket.connect" and isinstance(args[1], tuple):
            connects.append(str(args[1][0]))
        elif event == "socket.getaddrinfo":
            lookups.append(str(args[0]))

    sys.addaudithook(audit)
    flips = iter([["127.0.0.1"]] + [[PRIVATE_IP]] * 10)
    names = {
        "site.test": ["127.0.0.1"],
        "private.test": [PRIVATE_IP],
        "meta.test": [METADATA_IP],
        "mixed.test": ["127.0.0.1", PRIVATE_IP],
        "mapped.test": [f"::ffff:{PRIVATE_IP}"],
    }

    def resolver(host: str, port: int) -> list[str]:
        return next(flips) if host == "rebind.test" else names[host]

    out: dict[str, Any] = {"results": {}, "connections": {}}
    with (
        HostileServer("127.0.0.1") as main,
        HostileServer(PRIVATE_IP, main.port) as private,
        HostileServer(METADATA_IP, 80) as metadata,
    ):
        p = main.port

        def run(phase: str, settings: Settings, cases: dict[str, str], *, system: bool = False) -> None:
            with build_client(settings, resolver=None if system else resolver) as client:
                for name, url in cases.items():
                    r: FetchResult = fetch_page(client, url, max_bytes=100_000, deadline_s=3)
                    out["results"][f"{phase}/{name}"] = [r.outcome, r.status, r.reason]
                if phase in ("strict", "private"):
                    # httpx's own redirect following (client.get) is guarded too.
                    try:
                        client.get(f"http://site.test:{p}/to-metadata")
                        out["results"][f"{phase}/httpx_follow"] = ["not refused"]
                    except BlockedAddress as exc:
                        out["results"][f"{phase}/httpx_follow"] = ["refused", None, exc.reason]
            out["connections"][phase] = [private.connections, metadata.connections]
            out["metadata_paths_" + phase] = sorted(metadata.hits)
            out["connects_" + phase] = sorted(set(connects))

        strict = fast(allow_networks=("127.0.0.1/32",))
        run("strict", strict, {
            "control": f"http://site.test:{p}/html",
            "name_private": f"http://private.test:{p}/html",
            "name_metadata": "http://meta.test/latest/meta-data/",
            "mixed": f"http://mixed.test:{p}/html",
            "mapped_name": f"http://mapped.test:{p}/html",
            "literal_private": f"http://{PRIVATE_IP}:{p}/html",
            "literal_metadata": f"http://{METADATA_IP}/latest/meta-data/",
            "literal_mapped_private": f"http://[::ffff:{PRIVATE_IP}]:{p}/html",
            "literal_mapped_metadata": f"http://[::ffff:{METADATA_IP}]/",
            "hop_metadata": f"http://site.test:{p}/to-metadata",
            "hop_private_name": f"http://site.test:{p}/to-private",
            "hop_private_literal": f"http://site.test:{p}/redirect?to=http://{PRIVATE_IP}:{p}/html",
            "rebind_first": f"http://rebind.test:{p}/html",
            "rebind_again": f"http://rebind.test:{p}/html?again",
        })  # fmt: skip
        run("system", fast(), {
            "localhost": f"http://localhost:{p}/html",
            "decimal": f"http://2130706433:{p}/html",
            "short": f"http://127.1:{p}/html",
            "hex": f"http://0x7f.0.0.1:{p}/html",
            "zero": f"http://0.0.0.0:{p}/html",
            "ten_short": f"http://10.1:{p}/html",
            "hex_metadata": "http://0xa9.0xfe.0xa9.0xfe/",
            "octal_metadata": "http://0251.0376.0251.0376/",
        }, system=True)  # fmt: skip
        run("private", fast(allow_private=True), {
            "name_private": f"http://private.test:{p}/html",
            "hop_metadata": f"http://site.test:{p}/to-metadata",
            "literal_metadata": f"http://{METADATA_IP}/html",
        })  # fmt: skip
        run("metadata_allowed", fast(allow_private=True, allow_networks=("169.254.0.0/16",)), {
            "literal_metadata": f"http://{METADATA_IP}/html",
            "hop_metadata": f"http://site.test:{p}/to-metadata",
        })  # fmt: skip
    out["lookups"] = sorted(set(lookups))
    print(json.dumps(out))


@pytest.fixture(scope="module")
def sealed() -> dict[str, Any]:
    """Run :func:`_isolated_main` under ``unshare -n`` and return its report."""
    code = "from tests.fetch.test_netguard import _isolated_main; _isolated_main()"
    proc = subprocess.run(
        ["unshare", "-n", sys.executable, "-c", code],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    report: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    return report


def _outcome(report: dict[str, Any], case: str) -> str:
    return str(report["results"][case][0])


def test_sealed_strict_policy_refuses_every_private_or_metadata_route(sealed: dict[str, Any]) -> None:
    strict = {k: v for k, v in sealed["results"].items() if k.startswith("strict/")}
    assert strict.pop("strict/control")[0] == "ok"
    assert strict.pop("strict/rebind_first")[0] == "ok"
    assert strict.pop("strict/rebind_again")[0] in {"ok", "refused"}  # pooled, or re-resolved
    assert {k: v[0] for k, v in strict.items()} == dict.fromkeys(strict, "refused")
    # Nothing reached the fake private and metadata servers, and no socket even tried.
    assert sealed["connections"]["strict"] == [0, 0]
    assert sealed["connects_strict"] == ["127.0.0.1"]


def test_sealed_names_are_only_resolved_by_the_guard(sealed: dict[str, Any]) -> None:
    # The backend connects to checked IP literals; a host name reaching getaddrinfo after the
    # check would let DNS rebinding swap the address.  Only the system-resolver phase resolves names.
    names = [h for h in sealed["lookups"] if not _is_ip(h)]
    assert set(names) <= {"localhost", "2130706433", "127.1", "0x7f.0.0.1", "10.1", "0xa9.0xfe.0xa9.0xfe"}
    assert "rebind.test" not in names and "site.test" not in names


def _is_ip(text: str) -> bool:
    import ipaddress

    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


def test_sealed_odd_spellings_of_internal_addresses_are_refused(sealed: dict[str, Any]) -> None:
    system = {k.split("/", 1)[1]: v for k, v in sealed["results"].items() if k.startswith("system/")}
    # httpx itself rejects dotted octal (leading zeros); everything else resolves and is refused.
    assert system.pop("octal_metadata")[0] == "invalid_url"
    assert {k: v[0] for k, v in system.items()} == dict.fromkeys(system, "refused")
    assert "metadata" in system["hex_metadata"][2]
    assert sealed["connections"]["system"] == [0, 0]


def test_sealed_allow_private_reaches_private_but_not_metadata(sealed: dict[str, Any]) -> None:
    assert _outcome(sealed, "private/name_private") == "ok"
    assert _outcome(sealed, "private/hop_metadata") == "refused"
    assert _outcome(sealed, "private/literal_metadata") == "refused"
    assert _outcome(sealed, "private/httpx_follow") == "refused"
    private_conns, metadata_conns = sealed["connections"]["private"]
    assert private_conns == 1 and metadata_conns == 0


def test_sealed_allow_networks_opens_metadata(sealed: dict[str, Any]) -> None:
    assert _outcome(sealed, "metadata_allowed/literal_metadata") == "ok"
    # The hop reaches the fake metadata server, which has no /latest/meta-data/ page.
    assert sealed["results"]["metadata_allowed/hop_metadata"][:2] == ["http_error", 404]
    assert sealed["connections"]["metadata_allowed"][1] >= 1
    assert sealed["metadata_paths_metadata_allowed"] == ["/html", "/latest/meta-data/"]
