"""The client's TLS context is made on its first https request (start-up time), and https is
verified exactly as httpx's default: an unknown certificate is refused, ``SSL_CERT_FILE``
trusted. A hub on http:// never loads the CA bundle."""

from __future__ import annotations

import shutil
import ssl
import subprocess
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

import zoo
from support.client_helpers import MakeClient, Published
from support.hub import Hub


class NotFound(BaseHTTPRequestHandler):
    """Answers every GET with the hub's 404 error body."""

    def log_message(self, format: str, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        body = b'{"error": {"code": "NOT_FOUND", "message": "nothing here (test server)"}}'
        self.send_response(404)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


@pytest.fixture
def self_signed(tmp_path: Path) -> tuple[Path, Path]:
    """(certificate, key) for 127.0.0.1, signed by nobody the client knows."""
    if shutil.which("openssl") is None:
        pytest.skip("needs the openssl command (apt-get install openssl)")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    args = ["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=127.0.0.1"]
    args += ["-addext", "subjectAltName=IP:127.0.0.1", "-keyout", str(key), "-out", str(cert)]
    subprocess.run(["openssl", *args], check=True, capture_output=True)
    return cert, key


@pytest.fixture
def https_url(self_signed: tuple[Path, Path]) -> Iterator[str]:
    cert, key = self_signed
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    server = ThreadingHTTPServer(("127.0.0.1", 0), NotFound)
    server.daemon_threads = True
    server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"https://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_an_unknown_certificate_is_refused(
    https_url: str, make_client: MakeClient, tmp_path: Path
) -> None:
    client = make_client(https_url, cache=tmp_path / "c")
    with pytest.raises(zoo.NetworkError, match="CERTIFICATE_VERIFY_FAILED"):
        client.resolve("zoo:a/b@1")


def test_ssl_cert_file_is_trusted_as_by_httpx(
    https_url: str,
    self_signed: tuple[Path, Path],
    make_client: MakeClient,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("SSL_CERT_FILE", str(self_signed[0]))
    client = make_client(https_url, cache=tmp_path / "c")
    with pytest.raises(zoo.APIError, match="test server") as err:
        client.resolve("zoo:a/b@1")  # the handshake passed: the server's 404 came back
    assert err.value.status == 404


def test_a_hub_on_http_never_loads_the_ca_bundle(
    hub: Hub, published: Published, make_client: MakeClient, tmp_path: Path
) -> None:
    client = make_client(hub.url, cache=tmp_path / "c")
    client.download(published.stub)  # on S3, from a store on http:// as well
    assert client.http._tls is None
