"""What a peer certificate says (subject, issuer, validity, names), read from its DER bytes.

Used only after verification failed, to tell the operator *why* ("expired on 2026-01-02", "issued
for erp.example.org"). The standard library cannot decode an unverified certificate and the
runtime has no X.509 package, so this walks the few DER fields we need (RFC 5280) itself.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from datetime import UTC, datetime

_CN_OID = bytes.fromhex("550403")  # 2.5.4.3 commonName
_SAN_OID = bytes.fromhex("551d11")  # 2.5.29.17 subjectAltName
_SEQUENCE, _SET, _OID, _OCTETS, _BOOLEAN = 0x30, 0x31, 0x06, 0x04, 0x01
_UTC_TIME, _GENERALIZED_TIME = 0x17, 0x18
_VERSION_TAG, _EXTENSIONS_TAG = 0xA0, 0xA3
_SAN_DNS, _SAN_IP = 0x82, 0x87


@dataclass(frozen=True)
class CertInfo:
    subject_cn: str
    issuer_cn: str
    not_before: datetime | None
    not_after: datetime | None
    names: tuple[str, ...]
    # Issuer name equal to subject name, byte for byte.
    self_signed: bool = False

    def describe(self) -> str:
        """One line for evidence: subject, issuer, validity and the names it covers."""
        parts = [f"subject CN={self.subject_cn}"] if self.subject_cn else []
        parts += [f"issuer CN={self.issuer_cn}"] if self.issuer_cn else []
        if self.not_after is not None:
            parts.append(f"valid until {self.not_after:%Y-%m-%d %H:%M} UTC")
        if self.names:
            parts.append("names " + ", ".join(self.names[:8]))
        return "; ".join(parts)


class _Der:
    """A cursor over DER TLVs: (tag, content start, content end)."""

    def __init__(self, data: bytes) -> None:
        self.data = data

    def read(self, pos: int) -> tuple[int, int, int]:
        tag = self.data[pos]
        first = self.data[pos + 1]
        if first < 0x80:
            return tag, pos + 2, pos + 2 + first
        count = first & 0x7F
        length = int.from_bytes(self.data[pos + 2 : pos + 2 + count], "big")
        start = pos + 2 + count
        return tag, start, start + length

    def children(self, start: int, end: int) -> list[tuple[int, int, int]]:
        found: list[tuple[int, int, int]] = []
        pos = start
        while pos < end:
            tag, begin, finish = self.read(pos)
            found.append((tag, begin, finish))
            pos = finish
        return found


def _time(der: _Der, tag: int, start: int, end: int) -> datetime | None:
    text = der.data[start:end].decode("ascii", "replace").rstrip("Z")
    try:
        if tag == _UTC_TIME:
            parsed = datetime.strptime(text, "%y%m%d%H%M%S")
        elif tag == _GENERALIZED_TIME:
            parsed = datetime.strptime(text[:14], "%Y%m%d%H%M%S")
        else:
            return None
    except ValueError:
        return None
    return parsed.replace(tzinfo=UTC)


def _common_name(der: _Der, start: int, end: int) -> str:
    for _, set_start, set_end in der.children(start, end):
        for _, attr_start, attr_end in der.children(set_start, set_end):
            parts = der.children(attr_start, attr_end)
            if len(parts) == 2 and der.data[parts[0][1] : parts[0][2]] == _CN_OID:
                return der.data[parts[1][1] : parts[1][2]].decode("utf-8", "replace")
    return ""


def _alt_names(der: _Der, start: int, end: int) -> tuple[str, ...]:
    _, seq_start, seq_end = der.read(start)
    for _, ext_start, ext_end in der.children(seq_start, seq_end):
        parts = der.children(ext_start, ext_end)
        if not parts or der.data[parts[0][1] : parts[0][2]] != _SAN_OID:
            continue
        _, value_start, _ = parts[-1]
        _, names_start, names_end = der.read(value_start)
        names: list[str] = []
        for tag, name_start, name_end in der.children(names_start, names_end):
            raw = der.data[name_start:name_end]
            if tag == _SAN_DNS:
                names.append(raw.decode("ascii", "replace"))
            elif tag == _SAN_IP and len(raw) in (4, 16):
                names.append(str(ipaddress.ip_address(raw)))
        return tuple(names)
    return ()


def parse_certificate(data: bytes) -> CertInfo | None:
    """Subject/issuer CN, validity and subjectAltNames of a DER certificate; None if unreadable."""
    der = _Der(data)
    try:
        _, cert_start, _ = der.read(0)
        _, tbs_start, tbs_end = der.read(cert_start)
        fields = der.children(tbs_start, tbs_end)
        if fields and fields[0][0] == _VERSION_TAG:
            fields = fields[1:]
        # serial, signature algorithm, issuer, validity, subject, public key, [optional extras]
        issuer, validity, subject = fields[2], fields[3], fields[4]
        times = der.children(validity[1], validity[2])
        extensions = next((f for f in fields[6:] if f[0] == _EXTENSIONS_TAG), None)
        return CertInfo(
            subject_cn=_common_name(der, subject[1], subject[2]),
            issuer_cn=_common_name(der, issuer[1], issuer[2]),
            not_before=_time(der, *times[0]),
            not_after=_time(der, *times[1]),
            names=_alt_names(der, extensions[1], extensions[2]) if extensions else (),
            self_signed=der.data[issuer[1] : issuer[2]] == der.data[subject[1] : subject[2]],
        )
    except (IndexError, ValueError):
        return None
