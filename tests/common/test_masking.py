"""The one masking implementation: what it hides and what it leaves readable."""

from __future__ import annotations

import pytest

from services.common.masking import (
    MASK,
    escape_control,
    is_sensitive_key,
    mask_headers,
    mask_text,
    mask_value,
    sanitize_url,
    truncate,
)


@pytest.mark.parametrize(
    ("text", "secret"),
    [
        ("Authorization: Bearer eyJhbGciOi.eyJzdWIiOi.c2lnbmF0dXJl", "eyJhbGciOi"),
        ("token=abc123def&x=1", "abc123def"),
        ("password: hunter22", "hunter22"),
        ("connect postgresql://b2x:s3cr3t@db:5432/b2x", "s3cr3t"),
        ("GET https://erp/api?api_key=K3Y-999 failed", "K3Y-999"),
        ("key b2x_abcdefghijkl_ABCDEFGHIJKLMNOPQRSTUVWXYZ012345 leaked", "ABCDEFGHIJKLMNOPQRSTUVWXYZ012345"),
        ("mail to jane.doe@example.com about it", "jane.doe"),
    ],
)
def test_secrets_and_pii_inside_free_text_are_masked(text: str, secret: str) -> None:
    """Bearer tokens, query secrets, inline passwords, URL credentials, our keys and e-mails disappear."""
    masked = mask_text(text)
    assert secret not in masked
    assert MASK in masked or "***@" in masked


def test_urls_keep_their_shape_but_lose_credentials_and_secret_parameters() -> None:
    """The user name, host, path and harmless parameters stay; the password and token go; no fragment."""
    url = sanitize_url("https://svc:pa55@erp.example.com:8443/api/v2/articles?page=2&token=t0k#frag")
    assert url.startswith("https://svc:") and "pa55" not in url and "t0k" not in url
    assert "erp.example.com:8443/api/v2/articles" in url and "page=2" in url and "frag" not in url


def test_sensitive_headers_are_masked_and_others_kept() -> None:
    """Authorization, Cookie and API-key headers lose their value; Content-Type stays as it was."""
    headers = mask_headers(
        {"Authorization": "Basic dXNlcjpwYXNz", "Cookie": "s=1", "X-Api-Key": "k", "Content-Type": "application/json"}
    )
    assert headers == {"Authorization": MASK, "Cookie": MASK, "X-Api-Key": MASK, "Content-Type": "application/json"}
    assert is_sensitive_key("client_secret") and not is_sensitive_key("token_type")


def test_nested_documents_are_masked_by_key_and_by_content() -> None:
    """A secret under a sensitive key is replaced whole; free text deeper down is scanned too."""
    value = mask_value({"erp": {"password": "x", "note": "call ops@example.com"}, "items": ["token=zzz1"]})
    assert value == {"erp": {"password": MASK, "note": "call o***@example.com"}, "items": [f"token={MASK}"]}


def test_control_characters_cannot_forge_a_new_line() -> None:
    """Newlines, carriage returns and escape sequences become visible escapes."""
    assert escape_control("ok\nFAKE [error] x\r\x1b[31m") == "ok\\nFAKE [error] x\\r\\x1b[31m"


def test_truncation_says_how_much_was_cut() -> None:
    """A long value is cut with a marker naming the number of characters removed."""
    assert truncate("a" * 15, 10) == "a" * 10 + "…[truncated 5 chars]"
    assert truncate("short", 10) == "short"
