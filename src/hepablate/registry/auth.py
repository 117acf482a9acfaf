"""Users, roles, site groups, passwords, API tokens and NHS-number hashing.

Passwords are hashed with Argon2id (argon2-cffi defaults, RFC 9106 profile). API tokens are
random 256-bit strings; only their SHA-256 is stored. NHS numbers are checked with the
Modulus 11 check digit (NHS Data Dictionary, "NHS Number") and stored only as a keyed
HMAC-SHA256 whose key comes from `$HEPABLATE_NHS_KEY` (never from the database).
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from dataclasses import dataclass
from datetime import timedelta

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import Connection, insert, select, update

from hepablate.errors import InputError
from hepablate.registry.models import ROLE_DESCRIPTIONS, ROLES, ApiToken, Role, Site, User, utcnow

# Argon2id with the RFC 9106 "low memory" profile (argon2-cffi's default: t=3, m=64 MiB, p=4).
DEFAULT_HASHER = PasswordHasher()
_HASHER = DEFAULT_HASHER
TOKEN_LIFETIME = timedelta(hours=12)
MIN_PASSWORD_LENGTH = 10

# What each role may do with clinical records.
READ_ROLES = frozenset(ROLES)
WRITE_ROLES = frozenset({"administrator", "clinician", "data_entry"})
DELETE_ROLES = frozenset({"administrator", "clinician"})
AUDIT_ROLES = frozenset({"administrator", "auditor"})
ADMIN_ROLES = frozenset({"administrator"})


class PermissionDenied(Exception):
    """The actor's role or site does not allow the operation (HTTP 403)."""


@dataclass(frozen=True)
class Actor:
    """Who acts: a registry user, or a command-line operator (role administrator)."""

    name: str
    role: str
    site: str | None  # None: every site
    user_id: int | None = None

    def can_see(self, site: str | None) -> bool:
        return self.site is None or site == self.site

    def require(self, roles: frozenset[str], what: str) -> None:
        if self.role not in roles:
            raise PermissionDenied(f"role '{self.role}' may not {what}")

    def require_site(self, site: str | None, what: str) -> None:
        if not self.can_see(site):
            raise PermissionDenied(f"user of site '{self.site}' may not {what} site '{site}'")


def hash_password(password: str) -> str:
    """Argon2id hash (PHC string with salt and parameters)."""
    if len(password) < MIN_PASSWORD_LENGTH:
        raise InputError(f"must have at least {MIN_PASSWORD_LENGTH} characters", field="password")
    return _HASHER.hash(password)


def verify_password(stored_hash: str, password: str) -> bool:
    try:
        return _HASHER.verify(stored_hash, password)
    except (VerificationError, InvalidHashError):
        return False


def nhs_number_valid(number: str) -> bool:
    """Modulus 11: weights 10..2 on the first nine digits; check = 11 - (sum mod 11), 11 -> 0,
    10 -> invalid (NHS Data Dictionary)."""
    digits = number.replace(" ", "").replace("-", "")
    if len(digits) != 10 or not digits.isdigit():
        return False
    total = sum(int(d) * w for d, w in zip(digits[:9], range(10, 1, -1), strict=True))
    check = 11 - total % 11
    if check == 11:
        check = 0
    return check != 10 and check == int(digits[9])


def nhs_key() -> bytes:
    key = os.environ.get("HEPABLATE_NHS_KEY", "")
    if len(key) < 16:
        raise InputError(
            "set HEPABLATE_NHS_KEY (a secret of at least 16 characters) to store NHS numbers",
            field="nhs_number",
        )
    return key.encode()


def hash_nhs_number(number: str, key: bytes | None = None) -> str:
    """Keyed HMAC-SHA256 (hex) of a valid NHS number; InputError if the check digit fails."""
    digits = number.replace(" ", "").replace("-", "")
    if not nhs_number_valid(digits):
        raise InputError(
            "not a valid NHS number (10 digits with a Modulus 11 check digit)", field="nhs_number"
        )
    return hmac.new(key or nhs_key(), digits.encode(), hashlib.sha256).hexdigest()


def ensure_roles(conn: Connection) -> None:
    have = set(conn.scalars(select(Role.name)))
    missing = [{"name": r, "description": ROLE_DESCRIPTIONS[r]} for r in ROLES if r not in have]
    if missing:
        conn.execute(insert(Role), missing)


def ensure_site(conn: Connection, code: str, name: str | None = None) -> None:
    if not code or len(code) > 64:
        raise InputError("site code must have 1 to 64 characters", field="site")
    if conn.scalar(select(Site.code).where(Site.code == code)) is None:
        conn.execute(insert(Site).values(code=code, name=name or code))


def add_user(conn: Connection, username: str, password: str, role: str, site: str | None) -> int:
    """Create a user (and its site if new). Returns the user id."""
    if role not in ROLES:
        raise InputError(f"expected one of {', '.join(ROLES)}, got '{role}'", field="role")
    if not username or len(username) > 64:
        raise InputError("must have 1 to 64 characters", field="username")
    if conn.scalar(select(User.id).where(User.username == username)) is not None:
        raise InputError(f"user '{username}' already exists", field="username")
    if site is not None:
        ensure_site(conn, site)
    ensure_roles(conn)
    return conn.execute(
        insert(User)
        .values(
            username=username,
            password_hash=hash_password(password),
            role=role,
            site=site,
            active=True,
            created_at=utcnow(),
        )
        .returning(User.id)
    ).scalar_one()


_DUMMY_HASH: dict[int, str] = {}


def _dummy_hash() -> str:
    """A hash made with the current hasher's parameters, verified for unknown usernames so
    that a failed login takes as long whether or not the account exists."""
    key = id(_HASHER)
    if key not in _DUMMY_HASH:
        _DUMMY_HASH.clear()
        _DUMMY_HASH[key] = _HASHER.hash(secrets.token_urlsafe(24))
    return _DUMMY_HASH[key]


def authenticate(conn: Connection, username: str, password: str) -> Actor | None:
    """The actor for a valid username and password, else None. Every failure costs one
    Argon2 verification (a dummy hash for unknown users), so timing does not reveal which
    usernames exist."""
    row = conn.execute(select(User).where(User.username == username)).first()
    stored = row.password_hash if row is not None else _dummy_hash()
    ok = verify_password(stored, password)
    if row is None or not row.active or not ok:
        return None
    return Actor(name=row.username, role=row.role, site=row.site, user_id=row.id)


def _token_digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def issue_token(conn: Connection, actor: Actor) -> tuple[str, object]:
    """A new bearer token for `actor`; returns (token, expires_at)."""
    token = secrets.token_urlsafe(32)
    expires = utcnow() + TOKEN_LIFETIME
    conn.execute(
        insert(ApiToken).values(
            token_sha256=_token_digest(token),
            user_id=actor.user_id,
            created_at=utcnow(),
            expires_at=expires,
            revoked=False,
        )
    )
    return token, expires


def actor_for_token(conn: Connection, token: str) -> Actor | None:
    row = conn.execute(
        select(User.id, User.username, User.role, User.site, User.active, ApiToken.expires_at)
        .join(ApiToken, ApiToken.user_id == User.id)
        .where(ApiToken.token_sha256 == _token_digest(token), ApiToken.revoked.is_(False))
    ).first()
    if row is None or not row.active or row.expires_at < utcnow():
        return None
    return Actor(name=row.username, role=row.role, site=row.site, user_id=row.id)


def revoke_token(conn: Connection, token: str) -> None:
    conn.execute(
        update(ApiToken).where(ApiToken.token_sha256 == _token_digest(token)).values(revoked=True)
    )
