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


@pytest.mark.parametrize(
    ("text", "secret", "kept"),
    [
        ("refund to DE89370400440532013000 today", "370400440532013000", "DE89"),
        ("IBAN DE89 3704 0044 0532 0130 00 for Anna", "0532 0130", "DE89"),
        ("gb GB82WEST12345698765432 is wrong", "12345698765432", "GB82"),
        ("card 4111 1111 1111 1111 declined", "1111 1111 1111", "1111"),
        ("card 5500-0000-0000-0004 declined", "0000-0000", "0004"),
        ("call +49 170 1234567 after 5", "1234567", "+49"),
        ("tel. 0049 (0)30 12345678", "12345678", ""),
    ],
)
def test_ibans_card_numbers_and_phone_numbers_are_masked(text: str, secret: str, kept: str) -> None:
    """IBANs, payment card numbers (Luhn-valid) and phone numbers lose their digits; a hint that helps an
    operator recognise which one it was (country, last digits) stays."""
    masked = mask_text(text)
    assert secret not in masked, masked
    assert kept in masked


@pytest.mark.parametrize(
    "text",
    [
        "processed 1234567 items in 12.5 s",
        "job 6f7d3a1e-0000-4000-8000-000000000001 took 2026-11-23T10:00:00Z",
        "order 20261123 batch 4711",
        "latency p95 1234 ms, 99.9 %",
    ],
)
def test_counts_ids_dates_and_durations_stay_readable(text: str) -> None:
    """Numbers that are not IBANs, cards or phone numbers pass unchanged."""
    assert mask_text(text) == text


def test_bidi_overrides_and_zero_width_characters_are_made_visible() -> None:
    """U+202E (right-to-left override) and zero-width characters cannot disguise a value."""
    escaped = escape_control("invoice\u202egpj.exe and a\u200bb\ufeff")
    assert "\u202e" not in escaped and "\u200b" not in escaped and "\ufeff" not in escaped
    assert "\\u202e" in escaped and "\\u200b" in escaped


def test_clean_value_masks_and_escapes_every_string_of_a_document() -> None:
    """Nested values are masked by key and content and their control characters escaped."""
    from services.common.masking import clean_value

    cleaned = clean_value({"reason": "stop\nFAKE LINE \u202e", "nested": [{"iban": "DE89370400440532013000"}]})
    assert cleaned["reason"] == "stop\\nFAKE LINE \\u202e"
    assert "370400440532013000" not in str(cleaned)


def test_challenges_and_prose_are_not_credentials() -> None:
    """A WWW-Authenticate challenge and sentences about tokens stay readable; real credentials after the same
    schemes are still masked."""
    challenge = 'Bearer realm="erp", error="invalid_token", error_description="The access token expired"'
    assert mask_text(challenge) == challenge
    assert mask_text('Basic realm="ERP", charset="UTF-8"') == 'Basic realm="ERP", charset="UTF-8"'
    assert mask_text("token expired at 10:00") == "token expired at 10:00"
    for credential in (
        "Bearer tok-9f8e7d6c5b4a",
        "Basic dXNlcjpwYXNzd29yZA==",
        "Token AbCdEfGh12",
        "Bearer ABCDEFGHIJ",
    ):
        assert mask_text(f"sent {credential} here") == f"sent {credential.split()[0]} {MASK} here"
