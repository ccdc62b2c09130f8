"""SOAP for plugin authors: the transport (zeep over aiohttp, offline WSDLs), headers, and what a
simulator needs to answer from the same WSDL. Apart from `gateway.sdk` so that a plugin that speaks no
SOAP never imports zeep."""

from zeep.helpers import serialize_object

from adapters.soap import (
    FaultClass,
    SoapAnswer,
    SoapCall,
    SoapHeaders,
    SoapTransport,
    XRoadClient,
    XRoadHeaders,
    XRoadService,
    username_token,
)
from adapters.soap.testing import Received, SoapStub, StubFault, fault_envelope

__all__ = [
    "FaultClass",
    "Received",
    "SoapAnswer",
    "SoapCall",
    "SoapHeaders",
    "SoapStub",
    "SoapTransport",
    "StubFault",
    "XRoadClient",
    "XRoadHeaders",
    "XRoadService",
    "fault_envelope",
    "serialize_object",
    "username_token",
]
