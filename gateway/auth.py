"""API keys, roles and tenant scope.

A key looks like `b2x_<id>_<secret>`: the id is public and names the row, the secret is 32 random
url-safe characters of which only a SHA-256 is stored (keys are random, so a slow password hash
adds nothing but latency). Roles are ordered: viewer < operator < admin. A key may be scoped to one
tenant; it then sees and acts on that tenant's data only.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import time
from collections import OrderedDict
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

import asyncpg

from services.common.errors import InvalidArgumentError, NotFoundError

KEY_PATTERN = re.compile(r"^b2x_([a-z0-9]{12})_([A-Za-z0-9_-]{32,64})$")
NAME_PATTERN = re.compile(r"^[\w .@:/-]{1,100}$")
TENANT_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,99}$")
_ID_ALPHABET = "abcdefghijklmnopqrstuvwxyz0123456789"


class Role(StrEnum):
    VIEWER = "viewer"
    OPERATOR = "operator"
    ADMIN = "admin"

    @property
    def rank(self) -> int:
        return _RANK[self]

    def allows(self, required: Role) -> bool:
        return self.rank >= required.rank


_RANK = {Role.VIEWER: 1, Role.OPERATOR: 2, Role.ADMIN: 3}


@dataclass(frozen=True)
class Principal:
    """Who is calling: the key's id and name, its role and optional tenant scope."""

    key_id: str
    name: str
    role: Role
    tenant_id: str | None = None

    def sees_tenant(self, tenant_id: str) -> bool:
        return self.tenant_id is None or self.tenant_id == tenant_id


@dataclass(frozen=True)
class ApiKeyRecord:
    id: str
    name: str
    role: Role
    tenant_id: str | None
    created_at: datetime
    created_by: str
    last_used_at: datetime | None
    expires_at: datetime | None
    revoked_at: datetime | None


def _hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def parse_bearer(header: str | None) -> str | None:
    """The key from `Authorization: Bearer <key>` (or a bare key), None when absent."""
    if not header:
        return None
    value = header.strip()
    if value.lower().startswith("bearer "):
        value = value[7:].strip()
    return value or None


def _record(row: asyncpg.Record) -> ApiKeyRecord:
    return ApiKeyRecord(
        id=row["id"],
        name=row["name"],
        role=Role(row["role"]),
        tenant_id=row["tenant_id"],
        created_at=row["created_at"],
        created_by=row["created_by"],
        last_used_at=row["last_used_at"],
        expires_at=row["expires_at"],
        revoked_at=row["revoked_at"],
    )


class KeyStore:
    """Creates, verifies (with a short, bounded cache of valid keys) and revokes API keys in gateway.api_keys.

    Only keys that verified are cached, least recently used first out; failures are never cached (the
    gateway throttles them per address instead), so a flood of random keys can neither fill the cache
    nor push the operators' keys out of it.
    """

    def __init__(self, pool: asyncpg.Pool, cache_seconds: float = 10.0, cache_size: int = 10_000) -> None:
        self._pool = pool
        self._cache_seconds = cache_seconds
        self._cache_size = cache_size
        self._cache: OrderedDict[str, tuple[float, Principal]] = OrderedDict()
        self._last_touch: dict[str, float] = {}
        # Fingerprints of keys that verified within the last hour: not guesses, so the per-address throttle
        # of failed authentications lets them through to be verified again (revoked ones still fail).
        self._known: OrderedDict[str, float] = OrderedDict()

    async def create(
        self, name: str, role: Role, tenant_id: str | None = None, created_by: str = ""
    ) -> tuple[str, ApiKeyRecord]:
        """A new key; the plain key is returned here and never again."""
        if not NAME_PATTERN.match(name):
            raise InvalidArgumentError("key name must be 1-100 letters, digits, spaces or . @ : / - _")
        if tenant_id is not None and not TENANT_PATTERN.match(tenant_id):
            raise InvalidArgumentError("tenant must be 1-100 letters, digits, '_', '.', ':' or '-'")
        key_id = "".join(secrets.choice(_ID_ALPHABET) for _ in range(12))
        secret = secrets.token_urlsafe(24)  # 32 characters
        row = await self._pool.fetchrow(
            "INSERT INTO gateway.api_keys (id, name, role, tenant_id, secret_hash, created_by)"
            " VALUES ($1, $2, $3, $4, $5, $6) RETURNING *",
            key_id,
            name,
            role.value,
            tenant_id,
            _hash(secret),
            created_by,
        )
        assert row is not None
        return f"b2x_{key_id}_{secret}", _record(row)

    async def verify(self, plain: str | None, *, fresh: bool = False) -> Principal | None:
        """The principal of a valid, unrevoked, unexpired key; None otherwise. `fresh` skips the cache."""
        if not plain:
            return None
        match = KEY_PATTERN.match(plain)
        if not match:
            return None
        key_id, secret = match.groups()
        now = time.monotonic()
        if not fresh and (cached := self.peek(plain)) is not None:
            return cached
        row = await self._pool.fetchrow(
            "SELECT id, name, role, tenant_id, secret_hash, expires_at, revoked_at FROM gateway.api_keys WHERE id = $1",
            key_id,
        )
        principal: Principal | None = None
        if (
            row is not None
            and hmac.compare_digest(row["secret_hash"], _hash(secret))
            and row["revoked_at"] is None
            and (row["expires_at"] is None or row["expires_at"] > datetime.now(UTC))
        ):
            principal = Principal(row["id"], row["name"], Role(row["role"]), row["tenant_id"])
            await self._touch(key_id, now)
            self._known[_hash(plain)] = now
            self._known.move_to_end(_hash(plain))
            while len(self._known) > self._cache_size:
                self._known.popitem(last=False)
            self._cache[plain] = (now, principal)
            self._cache.move_to_end(plain)
            while len(self._cache) > self._cache_size:
                self._cache.popitem(last=False)
        return principal

    def peek(self, plain: str | None) -> Principal | None:
        """The principal of a key verified within the cache window, without asking the database."""
        if not plain:
            return None
        cached = self._cache.get(plain)
        if cached is None:
            return None
        if time.monotonic() - cached[0] >= self._cache_seconds:
            del self._cache[plain]
            return None
        self._cache.move_to_end(plain)
        return cached[1]

    def recently_valid(self, plain: str | None, within: float = 3600.0) -> bool:
        """True when this exact key verified in this process within `within` seconds."""
        seen = self._known.get(_hash(plain)) if plain else None
        return seen is not None and time.monotonic() - seen < within

    def is_cached(self, plain: str) -> bool:
        return plain in self._cache

    def cached_keys(self) -> int:
        return len(self._cache)

    async def _touch(self, key_id: str, now: float) -> None:
        # last_used_at is informational; writing it once a minute per key is plenty.
        if now - self._last_touch.get(key_id, -1e9) >= 60:
            self._last_touch[key_id] = now
            await self._pool.execute("UPDATE gateway.api_keys SET last_used_at = now() WHERE id = $1", key_id)

    async def revoke(self, key_id: str, tenant_id: str | None = None) -> ApiKeyRecord:
        """Revoke a key; with `tenant_id`, only a key of that tenant (others answer NOT_FOUND)."""
        row = await self._pool.fetchrow(
            "UPDATE gateway.api_keys SET revoked_at = COALESCE(revoked_at, now())"
            " WHERE id = $1 AND ($2::text IS NULL OR tenant_id = $2) RETURNING *",
            key_id,
            tenant_id,
        )
        if row is None:
            raise NotFoundError(f"API key {key_id} not found")
        self.forget(key_id)
        return _record(row)

    def forget(self, key_id: str) -> None:
        """Drop a key from this process's cache, so its next use is verified against the database."""
        for plain in [k for k in self._cache if k.startswith(f"b2x_{key_id}_")]:
            del self._cache[plain]

    def forget_all(self) -> None:
        """Drop every cached key (after revocations may have been missed)."""
        self._cache.clear()

    async def list(self, tenant_id: str | None = None) -> list[ApiKeyRecord]:
        """All keys, newest first; with `tenant_id`, only that tenant's."""
        rows = await self._pool.fetch(
            "SELECT * FROM gateway.api_keys WHERE ($1::text IS NULL OR tenant_id = $1) ORDER BY created_at DESC",
            tenant_id,
        )
        return [_record(r) for r in rows]

    async def count_admins(self) -> int:
        value: Any = await self._pool.fetchval(
            "SELECT count(*) FROM gateway.api_keys WHERE role = 'admin' AND revoked_at IS NULL"
        )
        return int(value or 0)
