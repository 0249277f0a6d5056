"""Issue 27, item 7: deploy/'s nginx site, systemd units and firewall, rendered and checked.

- the nginx site, rendered with a self-signed certificate made here, passes ``nginx -t``
  (Debian's nginx), then serves: TLS 1.2 and 1.3 only, HSTS, port 80 only redirecting,
  the app reached through it;
- the systemd units pass ``systemd-analyze verify`` and carry the hardening;
- the firewall lets in only HTTPS (and SSH from the administrators' network).
"""

from __future__ import annotations

import datetime
import http.client
import importlib.util
import shutil
import socket
import ssl
import subprocess
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from tests.cluster import wait_until

ROOT = Path(__file__).resolve().parents[2]
HARDENING = {
    "NoNewPrivileges": "yes",
    "ProtectSystem": "strict",
    "ProtectHome": "yes",
    "PrivateTmp": "yes",
    "PrivateDevices": "yes",
    "ProtectKernelTunables": "yes",
    "ProtectKernelModules": "yes",
    "ProtectControlGroups": "yes",
    "RestrictSUIDSGID": "yes",
    "CapabilityBoundingSet": "",
    "UMask": "0077",
}


def _render_module() -> ModuleType:
    spec = importlib.util.spec_from_file_location("deploy_render", ROOT / "deploy" / "render.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _binary(name: str) -> str:
    found = shutil.which(name) or next(
        (str(p) for p in (Path("/usr/sbin") / name, Path("/usr/bin") / name) if p.exists()), None
    )
    if found is None:
        pytest.skip(
            f"!!! {name} IS NOT INSTALLED: this deployment check did NOT run. scripts/test "
            f"installs Debian's {name} when run as root."
        )
    return found


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _self_signed(directory: Path) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost")]), critical=False)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "cert.pem", directory / "key.pem"
    cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


def _nginx_root(tmp_path: Path, **values: str) -> tuple[Path, Path]:
    """The site rendered into a main configuration of the test's own; (config, site)."""
    cert, key = _self_signed(tmp_path)
    out = tmp_path / "rendered"
    given = {**_render_module().DEFAULTS, "server_name": "localhost"}
    given.update({"tls_certificate": str(cert), "tls_key": str(key), **values})
    _render_module().render_all(given, out)
    site = out / "nginx" / "tillit.conf"
    main = tmp_path / "nginx.conf"
    temp = tmp_path / "temp"
    temp.mkdir()
    main.write_text(
        f"""
user root;
worker_processes 1;
pid {tmp_path}/nginx.pid;
error_log {tmp_path}/error.log;
events {{ worker_connections 64; }}
http {{
    include /etc/nginx/mime.types;
    access_log {tmp_path}/access.log;
    client_body_temp_path {temp}/body;
    proxy_temp_path {temp}/proxy;
    fastcgi_temp_path {temp}/fastcgi;
    uwsgi_temp_path {temp}/uwsgi;
    scgi_temp_path {temp}/scgi;
    include {site};
}}
"""
    )
    return main, site


def test_a_template_naming_a_value_nobody_gave_is_refused_by_name() -> None:
    render = _render_module()

    with pytest.raises(render.MissingValue, match="--server-name is required"):
        render.render("server_name {{SERVER_NAME}};", {"server_name": None})
    assert (
        render.render("server_name {{SERVER_NAME}};", {"server_name": "localhost"})
        == "server_name localhost;"
    )


def test_the_rendered_nginx_site_passes_nginx_t(tmp_path: Path) -> None:
    nginx = _binary("nginx")
    main, site = _nginx_root(tmp_path)

    result = subprocess.run(  # noqa: S603 - Debian's nginx, our own rendered file
        [nginx, "-t", "-p", str(tmp_path), "-c", str(main)],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )

    assert result.returncode == 0, result.stderr
    assert "test is successful" in result.stderr
    text = site.read_text()
    assert "ssl_protocols TLSv1.2 TLSv1.3;" in text
    assert "{{" not in text


@pytest.fixture
def nginx_in_front(tmp_path: Path, live_server: Any) -> Iterator[tuple[int, int]]:
    """nginx on two free loopback ports (https, http) proxying to the live server."""
    nginx = _binary("nginx")
    https_port, http_port = _free_port(), _free_port()
    upstream = live_server.url.split("://", 1)[1].replace("localhost", "127.0.0.1")
    main, _site = _nginx_root(
        tmp_path,
        https_listen=f"127.0.0.1:{https_port}",
        http_listen=f"127.0.0.1:{http_port}",
        upstream=upstream,
    )
    server = subprocess.Popen(  # noqa: S603 - Debian's nginx, our own rendered file
        [nginx, "-p", str(tmp_path), "-c", str(main), "-g", "daemon off;"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )

    def listening() -> bool:
        with socket.socket() as probe:
            return probe.connect_ex(("127.0.0.1", https_port)) == 0

    try:
        wait_until(listening, timeout=20, what="nginx to listen")
        yield https_port, http_port
    finally:
        server.terminate()
        server.wait(timeout=20)


def _tls(port: int, *, lowest: ssl.TLSVersion, highest: ssl.TLSVersion) -> ssl.SSLSocket:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    context.minimum_version, context.maximum_version = lowest, highest
    if lowest < ssl.TLSVersion.TLSv1_2:
        context.set_ciphers("ALL:@SECLEVEL=0")  # let this client offer the old protocols
    raw = socket.create_connection(("127.0.0.1", port), timeout=10)
    return context.wrap_socket(raw, server_hostname="localhost")


@pytest.mark.django_db(transaction=True)
def test_nginx_speaks_only_tls_1_2_and_1_3(nginx_in_front: tuple[int, int]) -> None:
    https_port, _http_port = nginx_in_front
    for version in (ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3):
        with _tls(https_port, lowest=version, highest=version) as connection:
            assert connection.version() == version.name.replace("_", ".")
    for old in (ssl.TLSVersion.TLSv1, ssl.TLSVersion.TLSv1_1):
        with pytest.raises((ssl.SSLError, ConnectionResetError)):
            _tls(https_port, lowest=old, highest=old).close()


@pytest.mark.django_db(transaction=True)
def test_through_nginx_the_app_answers_with_hsts_and_port_80_only_redirects(
    nginx_in_front: tuple[int, int],
) -> None:
    https_port, http_port = nginx_in_front
    context = ssl.create_default_context()
    context.check_hostname, context.verify_mode = False, ssl.CERT_NONE
    secure = http.client.HTTPSConnection("localhost", https_port, context=context, timeout=30)
    secure.request("GET", "/account/login/")
    page = secure.getresponse()
    body = page.read().decode()

    assert page.status == 200 and 'name="password"' in body
    assert page.getheader("Strict-Transport-Security") == (
        "max-age=31536000; includeSubDomains; preload"
    )
    assert page.getheader("Server") == "nginx"  # no version
    plain = http.client.HTTPConnection("localhost", http_port, timeout=30)
    plain.request("GET", "/account/login/?next=/portal/")
    redirect = plain.getresponse()
    assert redirect.status == 301
    assert redirect.getheader("Location") == "https://localhost/account/login/?next=/portal/"


def test_the_systemd_units_verify_and_carry_the_hardening(tmp_path: Path) -> None:
    analyze = _binary("systemd-analyze")
    values = {**_render_module().DEFAULTS, "server_name": "localhost"}
    values.update({"app_dir": str(ROOT), "user": "root"})
    _render_module().render_all(values, tmp_path)
    units = sorted((tmp_path / "systemd").glob("*.service"))

    result = subprocess.run(  # noqa: S603 - Debian's systemd-analyze on our rendered units
        [analyze, "verify", *map(str, units)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    complaints = [
        line for line in (result.stdout + result.stderr).splitlines() if "tillit-" in line
    ]
    assert complaints == []
    assert [unit.name for unit in units] == ["tillit-web.service", "tillit-worker.service"]
    for unit in units:
        lines = dict(line.split("=", 1) for line in unit.read_text().splitlines() if "=" in line)
        missing = {k: v for k, v in HARDENING.items() if lines.get(k) != v}
        assert missing == {}, f"{unit.name} lacks {missing}"
    assert "manage.py qcluster" in (tmp_path / "systemd" / "tillit-worker.service").read_text()


def test_the_firewall_lets_in_only_https_and_admin_ssh() -> None:
    rules = (ROOT / "deploy" / "firewall" / "nftables.conf").read_text()
    active = [line.split("#", 1)[0].strip() for line in rules.splitlines()]
    accepting = [line for line in active if line.endswith("accept") and "dport" in line]

    assert "type filter hook input priority filter; policy drop;" in active
    assert "type filter hook forward priority filter; policy drop;" in active
    assert accepting == ["tcp dport 443 accept", "ip saddr @admin_networks tcp dport 22 accept"]
