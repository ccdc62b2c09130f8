"""Store urls, without loading a database driver."""

from __future__ import annotations


def redacted(url: str) -> str:
    """A url fit for a log line or a message: without its password."""
    if "@" not in url or "://" not in url:
        return url
    scheme, rest = url.split("://", 1)
    auth, host = rest.rsplit("@", 1)
    return f"{scheme}://{auth.split(':', 1)[0]}@{host}"


def is_postgres_url(url: str) -> bool:
    return url.startswith(("postgresql://", "postgres://"))
