"""Which SOAP Fault codes are worth retrying: one table for SOAP 1.1/1.2, X-Road and an agency's own codes.

A code is read as dot-separated segments ("Server.ServerProxy.AccessDenied"; SOAP 1.2 codes are the
Value followed by its Subcode values). Segments compare without case and without underscores, so
X-Road 6/7's "Server.ServerProxy.AccessDenied" and X-Road 8's "server.serverproxy.access_denied" are
one code. The first rule that matches decides:

1. the agency's own codes given by a plugin: the longest matching prefix of segments wins;
2. X-Road security-server codes ("Server.ClientProxy.*", "Server.ServerProxy.*", "Signer.*", ...):
   the most specific X-Road error code in the chain (X-Road message protocol 4.0 annex D; the security
   server's ErrorCodes, nordic-institute/X-Road src/common/common-core); an unknown one under "Server"
   is the security server's or the provider's trouble (transient); "Client.*" is the client's (permanent);
3. the SOAP base codes: Server/Receiver transient; Client/Sender, VersionMismatch, MustUnderstand,
   DataEncodingUnknown permanent;
4. anything else is a code nobody told us about: permanent, so an operator sees it at once.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Literal

FaultClass = Literal["transient", "permanent"]
TRANSIENT: FaultClass = "transient"
PERMANENT: FaultClass = "permanent"


def segments(code: str) -> tuple[str, ...]:
    """ "Server.ServerProxy.Access_Denied" -> ("server", "serverproxy", "accessdenied")."""
    return tuple(s.strip().replace("_", "").replace("-", "").lower() for s in code.split(".") if s.strip())


SOAP_CODES: dict[str, FaultClass] = {
    "server": TRANSIENT,  # SOAP 1.1: the server could not process a correct message
    "receiver": TRANSIENT,  # SOAP 1.2
    "client": PERMANENT,  # SOAP 1.1: the message was wrong
    "sender": PERMANENT,  # SOAP 1.2
    "versionmismatch": PERMANENT,
    "mustunderstand": PERMANENT,
    "dataencodingunknown": PERMANENT,  # SOAP 1.2
}

# Segments that name the X-Road component which failed, between "Server" and the error code.
XROAD_COMPONENTS = frozenset({"serverproxy", "clientproxy", "signer", "opmonitor", "mlog"})

# X-Road error codes (X-Road 6/7 spelling; X-Road 8's snake_case compares equal after `segments`).
# Permanent: the request, the caller's rights or the service's registration is wrong; asking again
# changes nothing until a person acts. Transient: the network, a security server or the provider is
# in trouble, or the security servers' configuration is being refreshed.
XROAD_CODES: dict[str, FaultClass] = {
    # access and registration
    "AccessDenied": PERMANENT,
    "UnknownService": PERMANENT,
    "ServiceDisabled": PERMANENT,
    "UnknownMember": PERMANENT,
    "InvalidClientIdentifier": PERMANENT,
    "InvalidSecurityServer": PERMANENT,
    "ServiceType": PERMANENT,
    "ServiceMissingUrl": PERMANENT,
    "ServiceMalformedUrl": PERMANENT,
    "AdapterWsdlNotFound": PERMANENT,
    "ClientProxyVersionNotSupported": PERMANENT,
    "SslAuthenticationFailed": PERMANENT,
    # the message itself
    "MissingBody": PERMANENT,
    "InvalidBody": PERMANENT,
    "MissingHeader": PERMANENT,
    "MissingHeaderField": PERMANENT,
    "DuplicateHeaderField": PERMANENT,
    "InconsistentHeaders": PERMANENT,
    "InvalidProtocolVersion": PERMANENT,
    "InvalidMessage": PERMANENT,
    "InvalidContentType": PERMANENT,
    "InvalidSoapAction": PERMANENT,
    "InvalidHttpMethod": PERMANENT,
    "MissingSoap": PERMANENT,
    "InvalidSoap": PERMANENT,
    "MalformedSoap": PERMANENT,
    "MissingRest": PERMANENT,
    "InvalidRest": PERMANENT,
    "InvalidXml": PERMANENT,
    "MimeParsingFailed": PERMANENT,
    "BadRequest": PERMANENT,
    "InvalidRequest": PERMANENT,
    "InvalidParameters": PERMANENT,
    "InvalidEncodedId": PERMANENT,
    # the network, the provider, a security server's own state
    "ServiceFailed": TRANSIENT,
    "NetworkError": TRANSIENT,
    "IOError": TRANSIENT,
    "InternalError": TRANSIENT,
    "DatabaseError": TRANSIENT,
    "HttpError": TRANSIENT,
    "UnknownHost": TRANSIENT,
    "InvalidResponse": TRANSIENT,
    "InconsistentResponse": TRANSIENT,
    "MaintenanceMode": TRANSIENT,
    "OutdatedGlobalConf": TRANSIENT,
    "GlobalConfOutdated": TRANSIENT,
    "MalformedGlobalConf": TRANSIENT,
    "MalformedServerConf": TRANSIENT,
    "MalformedKeyConf": TRANSIENT,
    "HSMNonOperational": TRANSIENT,
    "TimestampingFailed": TRANSIENT,
    "TimestamperFailed": TRANSIENT,
    "LoggingFailed": TRANSIENT,
    "CertValidation": TRANSIENT,
    "CertValidityTime": TRANSIENT,
    "MissingValidationInfo": TRANSIENT,
    "IncorrectValidationInfo": TRANSIENT,
    "CannotCreateCertPath": TRANSIENT,
    "InvalidCertPath": TRANSIENT,
    "CannotCreateSignature": TRANSIENT,
    "CannotSign": TRANSIENT,
    "InvalidSignatureValue": TRANSIENT,
    "MalformedSignature": TRANSIENT,
    "MissingSignature": TRANSIENT,
    "SignatureVerification": TRANSIENT,
    "TokenNotActive": TRANSIENT,
    "TokenNotAvailable": TRANSIENT,
    "KeyNotFound": TRANSIENT,
    "KeyNotAvailable": TRANSIENT,
    "CertNotFound": TRANSIENT,
}
_XROAD = {segments(k)[0]: v for k, v in XROAD_CODES.items()}


class FaultTable:
    """Classifies fault codes; `agency_codes` (code or code prefix -> class) come from a plugin."""

    def __init__(self, agency_codes: Mapping[str, FaultClass] | None = None) -> None:
        self.agency: dict[tuple[str, ...], FaultClass] = {}
        for code, cls in (agency_codes or {}).items():
            if cls not in (TRANSIENT, PERMANENT):
                raise ValueError(f"fault class of {code!r} must be 'transient' or 'permanent', not {cls!r}")
            key = segments(code)
            if not key:
                raise ValueError("an empty fault code cannot be classified")
            self.agency[key] = cls

    def classify(self, code: str | Iterable[str]) -> FaultClass:
        parts = segments(code) if isinstance(code, str) else segments(".".join(code))
        for n in range(len(parts), 0, -1):
            if parts[:n] in self.agency:
                return self.agency[parts[:n]]
        xroad = _xroad_class(parts)
        if xroad is not None:
            return xroad
        if parts and parts[0] in SOAP_CODES:
            return SOAP_CODES[parts[0]]
        return PERMANENT


def _xroad_class(parts: tuple[str, ...]) -> FaultClass | None:
    """The class of an X-Road code, or None when `parts` is not one."""
    head, rest = (parts[0], parts[1:]) if parts else ("", ())
    if head in XROAD_COMPONENTS:  # "Signer.TokenNotActive": a component without "Server." before it
        head, rest = "server", parts
    if head not in ("server", "client") or not rest:
        return None
    if head == "client":  # X-Road: the client information system sent something wrong
        return PERMANENT
    if rest[0] not in XROAD_COMPONENTS:
        return None  # "Server.CODE": a plain SOAP Server fault with the provider's own subcode
    # "Server.ClientProxy.ServiceFailed.MissingBody": the innermost known code says what happened.
    for segment in reversed(rest[1:]):
        if segment in _XROAD:
            return _XROAD[segment]
    return TRANSIENT


DEFAULT = FaultTable()
