"""SOAP 1.1/1.2 for agency plugins: zeep reads local WSDLs offline, aiohttp carries the calls."""

from adapters.soap.answers import SoapAnswer
from adapters.soap.fault_classes import FaultClass, FaultTable
from adapters.soap.faults import SoapFault, fault_error, find_fault
from adapters.soap.headers import SoapHeaders, XRoadClient, XRoadHeaderError, XRoadHeaders, XRoadService, username_token
from adapters.soap.multipart import Attachment
from adapters.soap.offline import OfflineTransport, load_client
from adapters.soap.transport import SoapCall, SoapTransport

__all__ = [
    "Attachment",
    "FaultClass",
    "FaultTable",
    "OfflineTransport",
    "SoapAnswer",
    "SoapCall",
    "SoapFault",
    "SoapHeaders",
    "SoapTransport",
    "XRoadClient",
    "XRoadHeaderError",
    "XRoadHeaders",
    "XRoadService",
    "fault_error",
    "find_fault",
    "load_client",
    "username_token",
]
