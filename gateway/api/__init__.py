"""The HTTP API under /v1: one for every centre."""
