"""Settings of one land office endpoint: an SFTP server with a pinned host key, or a local drop folder."""

from __future__ import annotations

import base64
import binascii
import struct
from typing import Any, Literal

import asyncssh
from pydantic import Field, field_validator, model_validator

from adapters.file import FileStore, LocalFolderStore, SftpStore
from adapters.file.naming import UnsafeName, safe_folder
from gateway.sdk import EndpointSettings
from gateway.sdk.appointments import DeskSettings

_KEY_TYPES = ("ssh-", "ecdsa-sha2-", "sk-ssh-", "sk-ecdsa-")


def normalise_host_key(value: str) -> str:
    """'ssh-ed25519 AAAA... comment', the base64 alone, or a known_hosts line -> 'type base64'.

    Raises ValueError unless the result is a public key asyncssh can import.
    """
    tokens = value.split()
    for i, tok in enumerate(tokens):
        if tok.startswith(_KEY_TYPES) and i + 1 < len(tokens):
            text = f"{tok} {tokens[i + 1]}"
            break
    else:
        if len(tokens) != 1:
            raise ValueError("host_key: expected 'ssh-ed25519 AAAA...', its base64 part or a known_hosts line")
        text = f"{_key_type(tokens[0])} {tokens[0]}"
    try:
        asyncssh.import_public_key(text)
    except (asyncssh.KeyImportError, ValueError) as exc:
        raise ValueError(f"host_key is not an SSH public key: {exc}") from None
    return text


def _key_type(b64: str) -> str:
    """The key type named at the start of an SSH wire-format public key blob."""
    try:
        blob = base64.b64decode(b64, validate=True)
        (n,) = struct.unpack(">I", blob[:4])
        name = blob[4 : 4 + n].decode("ascii")
    except (binascii.Error, struct.error, UnicodeDecodeError, ValueError):
        raise ValueError("host_key is neither an OpenSSH public key line nor base64 of one") from None
    if not name.startswith(_KEY_TYPES):
        raise ValueError(f"host_key names an unknown key type {name!r}")
    return name


class LandSettings(EndpointSettings):
    """One `[agency.<land>.endpoints.<office>]` table. `timeout` bounds each SFTP operation."""

    url: str = Field("", description="shown to operators; derived from the other settings when empty")
    transport: Literal["sftp", "local"] = "sftp"
    host: str | None = Field(None, description="sftp: the office's server")
    port: int = Field(22, ge=1, le=65535)
    username: str | None = None
    password: str | None = Field(None, repr=False, description="use ${ENV} in conf")
    host_key: str | None = Field(
        None, description="the server's host key to pin: 'ssh-ed25519 AAAA...', its base64, or a known_hosts line"
    )
    root: str = Field(".", description="sftp: the office's folder on the server; local: the drop folder")
    outbox: str = Field("outbox", description="where requests go (the office's inbox)")
    inbox: str = Field("inbox", description="where the office drops answers")
    processed: str = "processed"
    quarantine: str = "quarantine"
    connect_timeout: float = Field(10.0, gt=0, le=120)
    max_answer_bytes: int = Field(32 * 1024 * 1024, gt=0, description="answers carry the certificate in base64")
    checksum_grace_polls: int = Field(3, ge=0, le=100)
    appointments: DeskSettings | None = Field(
        None, description="the office's booking service (REST, signed): slots with its officers for referred dossiers"
    )

    @field_validator("host_key")
    @classmethod
    def _host_key(cls, v: str | None) -> str | None:
        return None if v is None or not v.strip() else normalise_host_key(v)

    @field_validator("outbox", "inbox", "processed", "quarantine")
    @classmethod
    def _folder(cls, v: str) -> str:
        try:
            return safe_folder(v)
        except UnsafeName as exc:
            raise ValueError(exc.message) from None

    @model_validator(mode="before")
    @classmethod
    def _url(cls, data: Any) -> Any:
        if isinstance(data, dict) and not data.get("url"):
            if data.get("transport", "sftp") == "sftp":
                where = f"{data.get('host')}:{data.get('port', 22)}/{str(data.get('root', '')).lstrip('/')}"
                data = {**data, "url": f"sftp://{data.get('username')}@{where}"}
            else:
                data = {**data, "url": f"file://{data.get('root', '.')}"}
        return data

    @model_validator(mode="after")
    def _complete(self) -> LandSettings:
        if self.transport == "sftp":
            missing = [k for k in ("host", "username", "password", "host_key") if not getattr(self, k)]
            if missing:
                # Without a pinned key asyncssh would trust any server: never by default.
                raise ValueError(f"an sftp land office needs {', '.join(missing)}")
        return self

    def store(self, agency: str) -> FileStore:
        if self.transport == "local":
            return LocalFolderStore(self.root, agency=agency)
        assert self.host and self.username and self.password and self.host_key  # checked above
        return SftpStore(
            self.host,
            self.port,
            username=self.username,
            password=self.password,
            host_key=self.host_key,
            root=self.root,
            agency=agency,
            connect_timeout=self.connect_timeout,
            op_timeout=self.timeout,
        )
