"""Exceptions the checks raise for failures that are not plain socket, TLS or library errors.

    ProbeFault
    ├── MissingVariable        a ${NAME} placeholder names an unset environment variable
    ├── ProtocolViolation      the peer answered, but not in the protocol we speak (not HTTP, not RESP)
    ├── CertificateRejected    TLS verification failed; carries what the certificate says
    ├── ProbeMisconfigured     the probe's own settings cannot be used (an unreadable ca_file)
    └── CheckFailed            the exchange worked but its content is wrong (status, body, health)

`classify.classify_exception` turns each of them, and the library errors, into a `Classification`.
"""

from __future__ import annotations

import ssl

from services.probes.domain import Classification
from services.probes.probing.certinfo import CertInfo


class ProbeFault(Exception):
    """Base of the faults a check raises itself."""


class MissingVariable(ProbeFault):
    def __init__(self, name: str, where: str, *, credential: bool) -> None:
        super().__init__(f"environment variable {name} is not set on the probe agent (referenced by {where})")
        self.name = name
        self.where = where
        # A placeholder in a header, the URL's userinfo or query almost always carries a secret.
        self.credential = credential


class ProtocolViolation(ProbeFault):
    def __init__(self, message: str, code: str = "PROTOCOL_VIOLATION") -> None:
        super().__init__(message)
        self.code = code


class CertificateRejected(ProbeFault):
    def __init__(self, error: ssl.SSLCertVerificationError, host: str, cert: CertInfo | None) -> None:
        super().__init__(error.verify_message or str(error))
        self.error = error
        self.host = host
        self.cert = cert


class CheckFailed(ProbeFault):
    def __init__(self, classification: Classification) -> None:
        super().__init__(classification.message)
        self.classification = classification


class ProbeMisconfigured(ProbeFault):
    """The probe cannot run as configured; nothing was sent. `code` names the setting (CA_FILE_UNUSABLE)."""

    def __init__(self, message: str, code: str) -> None:
        super().__init__(message)
        self.code = code
