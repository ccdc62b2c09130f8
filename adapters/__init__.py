"""Transports shared by every agency plugin: REST, SOAP and file exchange. Know no agency."""
