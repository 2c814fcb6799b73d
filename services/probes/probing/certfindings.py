"""What is wrong with a rejected certificate: every finding, the most useful first, and codes by name.

OpenSSL stops at the first verification error, and it builds the chain before it looks at dates or
names: a certificate that is expired *and* from an unknown CA is reported as "unable to get local
issuer certificate" (20). When the chain was the problem, the certificate itself (fetched without
verification, `certinfo`) still tells whether it is expired, not yet valid or made for other names.
Those findings come first: "renew it" or "use the right name" is the fix; the untrusted issuer is
reported beside them.
"""

from __future__ import annotations

import ipaddress
import re
from datetime import datetime
from enum import StrEnum

from services.probes.probing.certinfo import CertInfo

# OpenSSL's X509_V_ERR_* names (x509_vfy.h) for the codes a client sees; a verify code is never shown bare.
VERIFY_NAMES: dict[int, str] = {
    2: "UNABLE_TO_GET_ISSUER_CERT",
    3: "UNABLE_TO_GET_CRL",
    4: "UNABLE_TO_DECRYPT_CERT_SIGNATURE",
    6: "UNABLE_TO_DECODE_ISSUER_PUBLIC_KEY",
    7: "CERT_SIGNATURE_FAILURE",
    9: "CERT_NOT_YET_VALID",
    10: "CERT_HAS_EXPIRED",
    13: "ERROR_IN_CERT_NOT_BEFORE_FIELD",
    14: "ERROR_IN_CERT_NOT_AFTER_FIELD",
    17: "OUT_OF_MEM",
    18: "DEPTH_ZERO_SELF_SIGNED_CERT",
    19: "SELF_SIGNED_CERT_IN_CHAIN",
    20: "UNABLE_TO_GET_ISSUER_CERT_LOCALLY",
    21: "UNABLE_TO_VERIFY_LEAF_SIGNATURE",
    22: "CERT_CHAIN_TOO_LONG",
    23: "CERT_REVOKED",
    24: "INVALID_CA",
    25: "PATH_LENGTH_EXCEEDED",
    26: "INVALID_PURPOSE",
    27: "CERT_UNTRUSTED",
    28: "CERT_REJECTED",
    32: "KEYUSAGE_NO_CERTSIGN",
    34: "UNHANDLED_CRITICAL_EXTENSION",
    41: "INVALID_NON_CA",
    47: "PROXY_PATH_LENGTH_EXCEEDED",
    62: "HOSTNAME_MISMATCH",
    63: "EMAIL_MISMATCH",
    64: "IP_ADDRESS_MISMATCH",
    66: "INVALID_CALL",
    67: "STORE_LOOKUP",
    68: "NO_VALID_SCTS",
    69: "PROXY_SUBJECT_NAME_VIOLATION",
    70: "OCSP_VERIFY_NEEDED",
    71: "OCSP_VERIFY_FAILED",
    72: "OCSP_CERT_UNKNOWN",
    79: "EE_KEY_TOO_SMALL",
    80: "CA_KEY_TOO_SMALL",
    81: "CA_MD_TOO_WEAK",
}
EXPIRED, NOT_YET_VALID, HOSTNAME_MISMATCH, IP_ADDRESS_MISMATCH, SELF_SIGNED = 10, 9, 62, 64, 18
# The chain could not be built to a trusted root: dates and names were not looked at yet.
UNTRUSTED_CHAIN = frozenset({2, 18, 19, 20, 21, 27})


class Finding(StrEnum):
    """One thing wrong with a certificate, in the order of how useful it is as the verdict."""

    EXPIRED = "expired"
    NOT_YET_VALID = "not_yet_valid"
    NAME_MISMATCH = "name_mismatch"
    SELF_SIGNED = "self_signed"
    UNTRUSTED_CA = "untrusted_ca"
    OTHER = "other"


def verify_name(code: int, message: str = "") -> str:
    """`X509_V_ERR_CERT_HAS_EXPIRED` for 10; an unlisted code is named after OpenSSL's message."""
    name = VERIFY_NAMES.get(code) or re.sub(r"[^A-Z0-9]+", "_", message.upper()).strip("_") or "UNKNOWN"
    return f"X509_V_ERR_{name}"


def covers(cert: CertInfo, host: str) -> bool:
    """Whether the certificate names `host` (subjectAltName, else the subject CN; `*.` for one label)."""
    names = cert.names or ((cert.subject_cn,) if cert.subject_cn else ())
    if not names:
        return True  # nothing to judge by: do not blame the names
    wanted = host.lower().rstrip(".")
    try:
        address = ipaddress.ip_address(wanted.strip("[]"))
    except ValueError:
        address = None
    for name in names:
        candidate = name.lower().rstrip(".")
        if address is not None:
            try:
                if ipaddress.ip_address(candidate) == address:
                    return True
            except ValueError:
                continue
        elif candidate == wanted or (
            candidate.startswith("*.") and "." in wanted and wanted.split(".", 1)[1] == candidate[2:]
        ):
            return True
    return False


def findings(code: int, cert: CertInfo | None, host: str, now: datetime) -> list[Finding]:
    """Everything wrong with the certificate, the verdict first; never empty."""
    chain_failed = code in UNTRUSTED_CHAIN
    judged = cert if chain_failed else None  # past the chain, OpenSSL's own code is the whole story
    found: list[Finding] = []
    if code == EXPIRED or (judged and judged.not_after and judged.not_after < now):
        found.append(Finding.EXPIRED)
    elif code == NOT_YET_VALID or (judged and judged.not_before and judged.not_before > now):
        found.append(Finding.NOT_YET_VALID)
    if code in (HOSTNAME_MISMATCH, IP_ADDRESS_MISMATCH) or (judged and not covers(judged, host)):
        found.append(Finding.NAME_MISMATCH)
    if code == SELF_SIGNED or (cert is not None and cert.self_signed and (chain_failed or not found)):
        found.append(Finding.SELF_SIGNED)
    elif chain_failed:
        found.append(Finding.UNTRUSTED_CA)
    return found or [Finding.OTHER]
