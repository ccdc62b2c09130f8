"""File exchange for plugin authors: drop folders and SFTP (asyncssh), atomic writes, the XML exchange
with checksums and quarantine, and an SFTP server for simulators."""

from __future__ import annotations

import hashlib

import asyncssh
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat

from adapters.file import (
    AnswerRejected,
    DuplicateAnswer,
    FileExchange,
    FileStore,
    LocalFolderStore,
    OutboundFile,
    SftpStore,
    UnknownCorrelation,
)
from adapters.file.sftp_server import SftpTestServer, start_sftp_server


def seeded_host_key(seed: str) -> asyncssh.SSHKey:
    """An ed25519 host key derived from `seed`, so that a simulator's configuration can pin it (never
    for a real server)."""
    raw = Ed25519PrivateKey.from_private_bytes(hashlib.sha256(seed.encode()).digest())
    return asyncssh.import_private_key(raw.private_bytes(Encoding.PEM, PrivateFormat.OpenSSH, NoEncryption()))


def public_key_line(key: asyncssh.SSHKey) -> str:
    """The key's public half as one OpenSSH line (what a client pins as `host_key`)."""
    return bytes(key.export_public_key()).decode().strip()


__all__ = [
    "AnswerRejected",
    "DuplicateAnswer",
    "FileExchange",
    "FileStore",
    "LocalFolderStore",
    "OutboundFile",
    "SftpStore",
    "SftpTestServer",
    "UnknownCorrelation",
    "public_key_line",
    "seeded_host_key",
    "start_sftp_server",
]
