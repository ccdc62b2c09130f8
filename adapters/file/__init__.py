"""XML file exchange with an agency through a drop folder or SFTP; see `exchange` for the handler contract."""

from adapters.file.exchange import FileExchange, Handler
from adapters.file.model import (
    AnswerRejected,
    DuplicateAnswer,
    OutboundFile,
    PollReport,
    SentFile,
    UnknownCorrelation,
)
from adapters.file.naming import UnsafeName, is_safe_name, safe_name
from adapters.file.sftp import SftpStore
from adapters.file.stores import FileStore, FileTooLarge, LocalFolderStore

__all__ = [
    "AnswerRejected",
    "DuplicateAnswer",
    "FileExchange",
    "FileStore",
    "FileTooLarge",
    "Handler",
    "LocalFolderStore",
    "OutboundFile",
    "PollReport",
    "SentFile",
    "SftpStore",
    "UnknownCorrelation",
    "UnsafeName",
    "is_safe_name",
    "safe_name",
]
