"""Operator configuration in conf/: models, loading with file-and-key errors, cross-checks."""

from gateway.config.loader import load_config
from gateway.config.model import Config

__all__ = ["Config", "load_config"]
