"""Lienthong gateway core: HTTP API, auth, routing, store, dispatcher. Knows no agency."""

__version__ = "0.1.0"
