"""TLS and mutual TLS against real servers started with certificates made for the run
(trustme): the client trusts a private CA, presents a client certificate where one is
required, and is refused where it should be. Skipped only when the server binary predates the
TLS flags."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator

import pytest
import trustme
from conftest import unique

from bulkhead import AsyncClient, Client, TlsConfig
from bulkhead.errors import InvalidArgument, Unavailable
from bulkhead.testing import BulkheadServer, ServerTls, find_binary


def _serve_help() -> str:
    try:
        return subprocess.run(
            [find_binary(), "serve", "--help"], capture_output=True, text=True, timeout=60
        ).stdout
    except OSError:
        return ""


pytestmark = pytest.mark.skipif(
    "--tls-cert" not in _serve_help(), reason="this bulkhead binary has no --tls-cert yet"
)


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture(scope="module")
def server_tls(ca: trustme.CA) -> ServerTls:
    cert = ca.issue_cert("127.0.0.1", "bulkhead.test")
    return ServerTls(
        cert=b"".join(blob.bytes() for blob in cert.cert_chain_pems),
        key=cert.private_key_pem.bytes(),
    )


@pytest.fixture(scope="module")
def tls_server(server_tls: ServerTls) -> Iterator[BulkheadServer]:
    with BulkheadServer(find_binary(), tls=server_tls) as srv:
        yield srv


@pytest.fixture(scope="module")
def mtls_server(server_tls: ServerTls, ca: trustme.CA) -> Iterator[BulkheadServer]:
    tls = ServerTls(server_tls.cert, server_tls.key, client_ca=ca.cert_pem.bytes())
    with BulkheadServer(find_binary(), tls=tls) as srv:
        yield srv


def round_trip(client: Client, admin_token: str) -> None:
    admin = client.admin(admin_token)
    tenant_id = unique("tls")
    admin.create_tenant(tenant_id)
    _, secret = admin.create_key(tenant_id, "write")
    handle = client.tenant(tenant_id, api_key=secret)
    handle.create_collection("docs", 2)
    assert [c.collection_id for c in handle.list_collections()] == ["docs"]


def test_tls_with_a_private_ca(tls_server: BulkheadServer, ca: trustme.CA, tmp_path) -> None:  # type: ignore[no-untyped-def]
    assert tls_server.url.startswith("https://")
    with Client(tls_server.endpoint, tls=TlsConfig(ca_cert=ca.cert_pem.bytes())) as client:
        round_trip(client, tls_server.admin_token)
    # The same through an https:// endpoint, with the CA as a file.
    ca_file = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    with Client(tls_server.url, tls=TlsConfig(ca_cert=str(ca_file))) as client:
        round_trip(client, tls_server.admin_token)
    # The certificate is checked against server_name when given.
    config = TlsConfig(ca_cert=ca.cert_pem.bytes(), server_name="bulkhead.test")
    with Client(tls_server.endpoint, tls=config) as client:
        round_trip(client, tls_server.admin_token)


async def test_async_tls(tls_server: BulkheadServer, ca: trustme.CA) -> None:
    async with AsyncClient(tls_server.url, tls=TlsConfig(ca_cert=ca.cert_pem.bytes())) as client:
        tenant = await client.admin(tls_server.admin_token).create_tenant(unique("atls"))
        assert tenant.tenant_id.startswith("atls-")


def test_tls_refuses_untrusted_or_mismatched_servers(
    tls_server: BulkheadServer, ca: trustme.CA
) -> None:
    admin_token = tls_server.admin_token
    for tls in (
        True,  # the system roots don't include the test CA
        TlsConfig(ca_cert=trustme.CA().cert_pem.bytes()),  # another CA
        TlsConfig(ca_cert=ca.cert_pem.bytes(), server_name="other.test"),  # not in the cert
    ):
        with Client(tls_server.endpoint, tls=tls, max_attempts=1) as client:
            with pytest.raises(Unavailable):
                client.admin(admin_token).list_tenants()
    # Plaintext to a TLS server gets no answer either.
    with Client(tls_server.endpoint, max_attempts=1, timeout=5) as client:
        with pytest.raises(Unavailable):
            client.admin(admin_token).list_tenants()


def test_mutual_tls(mtls_server: BulkheadServer, ca: trustme.CA) -> None:
    trust = ca.cert_pem.bytes()
    with Client(mtls_server.endpoint, tls=TlsConfig(ca_cert=trust), max_attempts=1) as client:
        with pytest.raises(Unavailable):
            client.admin(mtls_server.admin_token).list_tenants()
    stranger = trustme.CA().issue_cert("client.test")
    with Client(
        mtls_server.endpoint,
        tls=TlsConfig(
            ca_cert=trust,
            client_cert=stranger.cert_chain_pems[0].bytes(),
            client_key=stranger.private_key_pem.bytes(),
        ),
        max_attempts=1,
    ) as client:
        with pytest.raises(Unavailable):
            client.admin(mtls_server.admin_token).list_tenants()
    issued = ca.issue_cert("client.test")
    config = TlsConfig(
        ca_cert=trust,
        client_cert=b"".join(blob.bytes() for blob in issued.cert_chain_pems),
        client_key=issued.private_key_pem.bytes(),
    )
    assert "PRIVATE" not in repr(config)
    with Client(mtls_server.endpoint, tls=config) as client:
        round_trip(client, mtls_server.admin_token)


def test_tls_settings_are_never_dropped_silently(ca: trustme.CA) -> None:
    with pytest.raises(InvalidArgument, match="not an https"):
        Client("http://127.0.0.1:7600", tls=TlsConfig(ca_cert=ca.cert_pem.bytes()))
    with pytest.raises(InvalidArgument, match="tls=False"):
        Client("https://127.0.0.1:7600", tls=False)
    with pytest.raises(InvalidArgument, match="needs its key"):
        Client("127.0.0.1:7600", tls=TlsConfig(client_cert=b"-----BEGIN CERTIFICATE-----"))
    with pytest.raises(InvalidArgument, match="reading the CA"):
        Client("127.0.0.1:7600", tls=TlsConfig(ca_cert="/nonexistent/ca.pem"))
