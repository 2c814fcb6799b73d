"""Masking of secrets and PII, and escaping of control characters.

One implementation for everything that leaves a process: log lines, events, stored error details,
GraphQL responses. What it hides:

- values under sensitive keys (authorization, cookie, token, password, secret, api key...),
- bearer/basic credentials, our own API keys and JWT-looking tokens inside free text,
- credentials in URLs (`scheme://user:pass@host`) and secret query parameters (`?token=...`),
- e-mail addresses (the local part: `j***@example.com`),
- IBANs (checksum-valid; country and check digits stay), payment card numbers (Luhn-valid; the last four
  digits stay) and phone numbers (the country code stays).

`escape_control` turns control characters, bidirectional overrides and zero-width characters into
visible escapes so no value can forge a log line or disguise itself. `clean_value` does both to every
string of a JSON-like document: it is what audit entries and job documents pass through.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import parse_qsl, quote, urlencode, urlsplit, urlunsplit

MASK = "****masked****"

_SENSITIVE_KEY = re.compile(
    r"(authorization|cookie|token|passw(or)?d|pwd|secret|api[-_]?key|apikey|private[-_]?key|"
    r"credential|session[-_]?id|signature|x-b2x-key|client[-_]?secret|dsn)",
    re.IGNORECASE,
)
# Keys that contain a sensitive word but only ever carry harmless values.
_SAFE_KEYS = frozenset({"token_type", "tokens_used", "max_tokens", "password_policy", "cookie_count"})
_SECRET_QUERY_PARAM = re.compile(
    r"^(access_token|refresh_token|id_token|token|api[-_]?key|apikey|key|secret|client_secret|"
    r"password|passwd|pwd|sig|signature|auth|code|session|sessionid)$",
    re.IGNORECASE,
)
_EMAIL = re.compile(r"\b([A-Za-z0-9._%+-])[A-Za-z0-9._%+-]*@([A-Za-z0-9.-]+\.[A-Za-z]{2,})\b")
# A credential after an auth scheme. Not one: an auth-param of a challenge (`Bearer realm="erp"`,
# WWW-Authenticate) or a plain lower-case word of prose ("the access token expired").
_AUTH_SCHEME = re.compile(
    r"\b(Bearer|Basic|Digest|Token|ApiKey)\s+"
    r"(?![A-Za-z][\w-]*\s*=\s*[\"\w])"
    r"(?!(?-i:[a-z]+)(?![A-Za-z0-9._~+/=-]))"
    r"[A-Za-z0-9._~+/=-]{4,}",
    re.IGNORECASE,
)
_B2X_KEY = re.compile(r"\bb2x_[A-Za-z0-9]{6,}_[A-Za-z0-9_-]{10,}")
_JWT = re.compile(r"\beyJ[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]{5,}")
_URL_CREDENTIALS = re.compile(r"\b([a-zA-Z][a-zA-Z0-9+.-]*://)([^/\s:@]+):([^/\s@]+)@")
_INLINE_SECRET = re.compile(
    r"\b(password|passwd|pwd|secret|token|api[-_]?key|apikey|access_token)(\s*[=:]\s*)([^\s&;,'\"]+)",
    re.IGNORECASE,
)
_QUERY_SECRET_IN_TEXT = re.compile(
    r"([?&](?:access_token|refresh_token|token|api[-_]?key|apikey|key|secret|client_secret|password|"
    r"sig|signature|code)=)([^&#\s]+)",
    re.IGNORECASE,
)
_CONTROL = re.compile(
    r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u200b-\u200f\u2028-\u202e\u2060-\u2064\u2066-\u2069\ufeff]|\r|\n|\t"
)
# An IBAN: country, check digits, 11-30 letters or digits, optionally in groups split by single spaces.
_IBAN = re.compile(r"(?<![A-Za-z0-9])([A-Z]{2}\d{2})((?: ?[A-Z0-9]){11,30})(?![A-Za-z0-9])")
# 13-19 digits, optionally grouped by spaces or dashes, standing alone (not part of an id or a number).
_CARD = re.compile(r"(?<![\w.,-])\d(?:[ -]?\d){12,18}(?![\w-]|[.,]\d)")
# International (+49 / 0049, optional "(0)") or national (leading 0 and a separator) phone numbers.
_PHONE_INTL = re.compile(
    r"(?<![\w+./:-])(\+|00)([1-9]\d{0,2})[ ./-]?(?:\(0\)[ ./-]?)?\(?\d{1,5}\)?(?:[ ./-]?\d{2,8}){1,4}(?![\w-])"
)
_PHONE_NATIONAL = re.compile(r"(?<![\w+./-])\(?0\d{2,5}\)?[ /-]\d{3,8}(?:[ -]\d{2,6})?(?![\w./-])")
_ESCAPES = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def is_sensitive_key(key: str) -> bool:
    """True when a header, field or log key names a secret."""
    lowered = key.lower()
    return lowered not in _SAFE_KEYS and bool(_SENSITIVE_KEY.search(lowered))


def mask_email(text: str) -> str:
    return _EMAIL.sub(lambda m: f"{m.group(1)}***@{m.group(2)}", text)


def _iban_valid(compact: str) -> bool:
    if not 15 <= len(compact) <= 34:
        return False
    rearranged = compact[4:] + compact[:4]
    digits = "".join(str(int(c, 36)) for c in rearranged)
    return int(digits) % 97 == 1


def _mask_iban(match: re.Match[str]) -> str:
    prefix, rest = match.group(1), match.group(2)
    # The pattern may have swallowed an upper-case word after the IBAN; take the longest valid prefix.
    for end in range(len(rest), 0, -1):
        if _iban_valid(prefix + rest[:end].replace(" ", "")):
            return f"{prefix}{MASK}{rest[end:]}"
    return match.group(0)


def _luhn_valid(digits: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        n = int(ch)
        if i % 2:
            n = n * 2 - 9 if n > 4 else n * 2
        total += n
    return total % 10 == 0


def _mask_card(match: re.Match[str]) -> str:
    digits = re.sub(r"\D", "", match.group(0))
    return f"{MASK}{digits[-4:]}" if _luhn_valid(digits) else match.group(0)


def _mask_phone(match: re.Match[str]) -> str:
    digits = re.sub(r"\D", "", match.group(0))
    if len(digits) < 7:
        return match.group(0)
    return f"{match.group(1)}{match.group(2)} {MASK}"


def mask_pii_numbers(text: str) -> str:
    """IBANs, card numbers and phone numbers inside free text, masked."""
    text = _IBAN.sub(_mask_iban, text)
    text = _CARD.sub(_mask_card, text)
    text = _PHONE_INTL.sub(_mask_phone, text)
    return _PHONE_NATIONAL.sub(lambda m: MASK if len(re.sub(r"\D", "", m.group(0))) >= 7 else m.group(0), text)


def mask_text(text: str) -> str:
    """Hide credentials and PII found anywhere inside free text."""
    text = _URL_CREDENTIALS.sub(lambda m: f"{m.group(1)}{m.group(2)}:{MASK}@", text)
    text = _QUERY_SECRET_IN_TEXT.sub(lambda m: f"{m.group(1)}{MASK}", text)
    text = _AUTH_SCHEME.sub(lambda m: f"{m.group(1)} {MASK}", text)
    text = _B2X_KEY.sub(MASK, text)
    text = _JWT.sub(MASK, text)
    text = _INLINE_SECRET.sub(lambda m: f"{m.group(1)}{m.group(2)}{MASK}", text)
    return mask_pii_numbers(mask_email(text))


def sanitize_url(url: str) -> str:
    """A URL safe to show: no password, secret query values masked, fragment dropped."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return mask_text(url)
    netloc = parts.netloc
    if "@" in netloc:
        userinfo, host = netloc.rsplit("@", 1)
        user = userinfo.split(":", 1)[0]
        netloc = f"{quote(user, safe='')}:{MASK}@{host}" if ":" in userinfo else f"{user}@{host}"
    query = parts.query
    if query:
        pairs = parse_qsl(query, keep_blank_values=True)
        query = urlencode(
            [(k, MASK if _SECRET_QUERY_PARAM.match(k) or is_sensitive_key(k) else mask_email(v)) for k, v in pairs],
            safe="*",
        )
    return urlunsplit((parts.scheme, netloc, parts.path, query, ""))


def is_secret_parameter(name: str) -> bool:
    """True when a URL query parameter of this name carries a secret (`token`, `api_key`, `password`...)."""
    return bool(_SECRET_QUERY_PARAM.match(name)) or is_sensitive_key(name)


def mask_headers(headers: Mapping[str, str]) -> dict[str, str]:
    """Header values with secrets replaced; header names kept so the shape stays visible."""
    return {name: (MASK if is_sensitive_key(name) else mask_text(value)) for name, value in headers.items()}


def mask_value(value: Any, key: str | None = None) -> Any:
    """Recursively mask a JSON-like value; keys that name secrets lose their whole value."""
    if key is not None and is_sensitive_key(key) and value not in (None, "", 0, False):
        return MASK
    if isinstance(value, str):
        return mask_text(value)
    if isinstance(value, Mapping):
        return {k: mask_value(v, str(k)) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [mask_value(v) for v in value]
    return value


def _escape(char: str) -> str:
    code = ord(char)
    return _ESCAPES.get(char) or (f"\\x{code:02x}" if code <= 0xFF else f"\\u{code:04x}")


def escape_control(text: str) -> str:
    """Make control, bidi-override and zero-width characters visible (`\\n`, `\\x1b`, `\\u202e`) so a value
    can neither start a new log line nor disguise what it says."""
    return _CONTROL.sub(lambda m: _escape(m.group(0)), text)


def clean_value(value: Any, key: str | None = None) -> Any:
    """A JSON-like value masked (by key and by content) with every string's control characters escaped."""
    if key is not None and is_sensitive_key(key) and value not in (None, "", 0, False):
        return MASK
    if isinstance(value, str):
        return escape_control(mask_text(value))
    if isinstance(value, Mapping):
        return {escape_control(str(k)): clean_value(v, str(k)) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [clean_value(v) for v in value]
    return value


def truncate(text: str, limit: int, marker: str = "…[truncated {n} chars]") -> str:
    """Cut `text` to at most `limit` characters plus a visible marker that says how much was cut."""
    if len(text) <= limit:
        return text
    return text[:limit] + marker.format(n=len(text) - limit)
