"""Optional bearer-token auth: on when an environment variable holds a token; the token itself never travels.

The builder reads the token where the application is built and hands replicas only its SHA-256 digest, so the
token is in no deployment argument, log line or answer; a request's ``Authorization: Bearer <token>`` is hashed
and compared in constant time.
"""

from __future__ import annotations

import hashlib
import hmac
import os


def token_digest(env_var: str) -> str | None:
    """The SHA-256 hex digest of the token in ``env_var``, or ``None`` (auth off) when it is unset or blank."""
    token = os.environ.get(env_var, "").strip()
    return hashlib.sha256(token.encode("utf-8")).hexdigest() if token else None


def authorized(header: str | None, digest: str | None) -> bool:
    """Whether an ``Authorization`` header carries the token (always true when auth is off)."""
    if digest is None:
        return True
    scheme, _, presented = (header or "").partition(" ")
    if scheme.lower() != "bearer" or not presented.strip():
        return False
    candidate = hashlib.sha256(presented.strip().encode("utf-8")).hexdigest()
    return hmac.compare_digest(candidate, digest)
