"""Endpoint and TLS settings turned into a gRPC channel, in one place for the sync and the
asyncio client. TLS settings are never silently dropped: given for an `http://` endpoint they
are refused, as the Rust SDK and the CLI refuse them."""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Union

import grpc
import grpc.aio

from bulkhead.errors import InvalidArgument

__all__ = ["TlsConfig"]

Pem = Union[bytes, str, "os.PathLike[str]"]
"""PEM bytes, a PEM string, or the path of a PEM file."""

USER_AGENT = "bulkhead-python/0.1.0"
# The server's default max-message-bytes: upserts and imports up to it must pass the client.
MAX_MESSAGE_BYTES = 64 * 1024 * 1024

_BASE_OPTIONS: tuple[tuple[str, Any], ...] = (
    ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
    ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
    ("grpc.primary_user_agent", USER_AGENT),
    # Reconnect on the SDK's own backoff scale (50 ms .. 2 s) rather than gRPC's default
    # (1 s growing to 2 min), so a restarted server is found again within the retries.
    ("grpc.initial_reconnect_backoff_ms", 100),
    ("grpc.min_reconnect_backoff_ms", 100),
    ("grpc.max_reconnect_backoff_ms", 2000),
)


@dataclass(frozen=True)
class TlsConfig:
    """TLS settings: a private CA to trust instead of the system roots, and/or a client
    certificate and key for servers that require one (mutual TLS). Each is PEM bytes, a PEM
    string or a file path. `server_name` checks the server's certificate against that name
    instead of the endpoint's host."""

    ca_cert: Pem | None = None
    client_cert: Pem | None = None
    client_key: Pem | None = field(default=None, repr=False)
    server_name: str | None = None

    def credentials(self) -> grpc.ChannelCredentials:
        if (self.client_cert is None) != (self.client_key is None):
            raise InvalidArgument("a client certificate needs its key, and a key its certificate")
        return grpc.ssl_channel_credentials(
            root_certificates=_pem(self.ca_cert, "the CA certificate"),
            private_key=_pem(self.client_key, "the client key"),
            certificate_chain=_pem(self.client_cert, "the client certificate"),
        )


def _pem(value: Pem | None, what: str) -> bytes | None:
    if value is None or isinstance(value, bytes):
        return value
    if isinstance(value, str) and value.lstrip().startswith("-----BEGIN"):
        return value.encode()
    try:
        with open(value, "rb") as f:
            return f.read()
    except OSError as e:
        raise InvalidArgument(f"reading {what} {os.fspath(value)!r}: {e}") from None


@dataclass(frozen=True)
class Target:
    """Where and how to connect: `address` is host:port; `tls` None means plaintext."""

    address: str
    tls: TlsConfig | None
    options: tuple[tuple[str, Any], ...]


def resolve(
    endpoint: str, tls: bool | TlsConfig | None, options: Sequence[tuple[str, Any]] = ()
) -> Target:
    """The connection an endpoint ("host:port", "http://host:port" or "https://host:port")
    and a TLS setting (None/False plaintext, True system roots, or a TlsConfig) stand for."""
    address = endpoint
    config: TlsConfig | None
    if endpoint.startswith("https://"):
        address = endpoint[len("https://") :]
        if tls is False:
            raise InvalidArgument(f"{endpoint} is an https:// endpoint, but tls=False was given")
        config = tls if isinstance(tls, TlsConfig) else TlsConfig()
    elif endpoint.startswith("http://"):
        address = endpoint[len("http://") :]
        if tls:
            raise InvalidArgument(
                f"TLS settings were given for {endpoint}, which is not an https:// endpoint"
            )
        config = None
    elif tls is None or tls is False:
        config = None
    else:
        config = tls if isinstance(tls, TlsConfig) else TlsConfig()
    address = address.rstrip("/")
    if not address or "/" in address:
        raise InvalidArgument(f"invalid endpoint {endpoint!r}: expected host:port")
    extra: list[tuple[str, Any]] = list(_BASE_OPTIONS)
    if config is not None and config.server_name:
        extra += [
            ("grpc.ssl_target_name_override", config.server_name),
            ("grpc.default_authority", config.server_name),
        ]
    return Target(address, config, (*extra, *options))


def sync_channel(target: Target) -> grpc.Channel:
    if target.tls is None:
        return grpc.insecure_channel(target.address, options=target.options)
    return grpc.secure_channel(target.address, target.tls.credentials(), options=target.options)


def aio_channel(target: Target) -> grpc.aio.Channel:
    if target.tls is None:
        return grpc.aio.insecure_channel(target.address, options=target.options)
    return grpc.aio.secure_channel(target.address, target.tls.credentials(), options=target.options)
