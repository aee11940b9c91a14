"""A real `bulkhead serve` for tests and examples: started on a free loopback port with its own
temporary data directory and admin token, stopped and removed on exit. Tests of code built on
the SDK then talk to the actual server rather than to a mock of it.

    with BulkheadServer() as server:
        client = Client(server.endpoint)
        admin = client.admin(server.admin_token)
"""

from __future__ import annotations

import os
import re
import secrets
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Union

__all__ = ["BulkheadServer", "ServerTls", "find_binary"]

Pem = Union[bytes, str, "os.PathLike[str]"]

_LISTENING = re.compile(r"bulkhead listening.*?\baddr=(\S+)")


@dataclass(frozen=True)
class ServerTls:
    """The server's certificate chain and key, and optionally the CA(s) whose client
    certificates it requires (mutual TLS): each PEM bytes or a file path."""

    cert: Pem
    key: Pem = field(repr=False)
    client_ca: Pem | None = None


def find_binary(binary: str | os.PathLike[str] | None = None) -> str:
    """`binary`, else $BULKHEAD_BIN, else `bulkhead` on PATH, else the debug build of this
    repository's cargo target directory ($CARGO_TARGET_DIR, default ~/.cache/bulkhead-target)."""
    candidates: list[str] = []
    if binary is not None:
        candidates.append(os.fspath(binary))
    elif os.environ.get("BULKHEAD_BIN"):
        candidates.append(os.environ["BULKHEAD_BIN"])
    else:
        on_path = shutil.which("bulkhead")
        if on_path:
            candidates.append(on_path)
        target = os.environ.get("CARGO_TARGET_DIR") or os.path.expanduser(
            "~/.cache/bulkhead-target"
        )
        candidates.append(os.path.join(target, "debug", "bulkhead"))
    for candidate in candidates:
        if os.path.isfile(candidate) and os.access(candidate, os.X_OK):
            return candidate
    raise FileNotFoundError(
        f"no bulkhead binary (tried {', '.join(candidates)}); set BULKHEAD_BIN or build it"
    )


def _toml_value(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    return '"' + str(value).replace("\\", "\\\\").replace('"', '\\"') + '"'


class BulkheadServer:
    """Runs `bulkhead serve --listen 127.0.0.1:0 --data-dir <tmp>` until `stop()` (or the end
    of the `with` block). `endpoint` is "127.0.0.1:PORT", `url` the same with its scheme
    (https when `tls` is given), `admin_token` the token it was started with.

    `config` entries go to a TOML file passed as `--config` (e.g.
    `{"default-requests-per-second": 0}`); `env` adds environment variables. Writes are not
    fsynced (the data directory is thrown away), unless `env` sets BULKHEAD_SYNC_WRITES."""

    def __init__(
        self,
        binary: str | os.PathLike[str] | None = None,
        extra_args: Sequence[str] = (),
        tls: ServerTls | None = None,
        *,
        config: Mapping[str, object] | None = None,
        env: Mapping[str, str] | None = None,
        admin_token: str | None = None,
        startup_timeout: float = 60.0,
    ) -> None:
        self.binary = find_binary(binary)
        self.extra_args = tuple(extra_args)
        self.tls = tls
        self.config = dict(config or {})
        self.env = dict(env or {})
        self.admin_token = admin_token or "bh-test-admin-" + secrets.token_hex(16)
        self.startup_timeout = startup_timeout
        self.endpoint = ""
        self._process: subprocess.Popen[bytes] | None = None
        self._dir: Path | None = None

    @property
    def url(self) -> str:
        return ("https://" if self.tls else "http://") + self.endpoint

    @property
    def log_path(self) -> Path:
        if self._dir is None:
            raise RuntimeError("the server is not running")
        return self._dir / "server.log"

    def log(self) -> str:
        """What the server wrote to stderr so far."""
        return self.log_path.read_text(errors="replace")

    def _write_pem(self, name: str, value: Pem) -> str:
        assert self._dir is not None
        if isinstance(value, bytes) or (
            isinstance(value, str) and value.lstrip().startswith("-----BEGIN")
        ):
            path = self._dir / name
            path.write_bytes(value if isinstance(value, bytes) else value.encode())
            return str(path)
        return os.fspath(value)

    def start(self) -> BulkheadServer:
        if self._process is not None:
            raise RuntimeError("the server is already running")
        self._dir = Path(tempfile.mkdtemp(prefix="bulkhead-test-"))
        args = [
            self.binary,
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--data-dir",
            str(self._dir / "data"),
        ]
        if self.tls is not None:
            args += ["--tls-cert", self._write_pem("server.crt", self.tls.cert)]
            args += ["--tls-key", self._write_pem("server.key", self.tls.key)]
            if self.tls.client_ca is not None:
                args += ["--tls-client-ca", self._write_pem("client-ca.crt", self.tls.client_ca)]
        if self.config:
            config_path = self._dir / "bulkhead.toml"
            config_path.write_text(
                "".join(f"{k} = {_toml_value(v)}\n" for k, v in self.config.items())
            )
            args += ["--config", str(config_path)]
        args += self.extra_args
        env = {
            **os.environ,
            "BULKHEAD_SYNC_WRITES": "false",
            **self.env,
            "BULKHEAD_ADMIN_TOKEN": self.admin_token,
        }
        with open(self.log_path, "wb") as log:
            self._process = subprocess.Popen(
                args, stdin=subprocess.DEVNULL, stdout=log, stderr=log, env=env
            )
        try:
            self.endpoint = self._wait_for_address()
        except BaseException:
            self.stop()
            raise
        return self

    def _wait_for_address(self) -> str:
        assert self._process is not None
        deadline = time.monotonic() + self.startup_timeout
        while time.monotonic() < deadline:
            match = _LISTENING.search(self.log())
            if match:
                return match.group(1)
            if self._process.poll() is not None:
                raise RuntimeError(
                    f"bulkhead serve exited with {self._process.returncode}:\n{self.log()}"
                )
            time.sleep(0.02)
        raise TimeoutError(
            f"bulkhead serve did not listen within {self.startup_timeout} s:\n{self.log()}"
        )

    def stop(self) -> None:
        """SIGTERM, then SIGKILL after 10 s; removes the data directory."""
        process, self._process = self._process, None
        if process is not None and process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        if self._dir is not None:
            shutil.rmtree(self._dir, ignore_errors=True)
            self._dir = None

    def __enter__(self) -> BulkheadServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
