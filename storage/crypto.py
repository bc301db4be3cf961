"""Encryption of reply addresses and keyed hashes for lookups, from one secret."""

from __future__ import annotations

import base64
import hashlib
import hmac

from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF


def _derive(secret: bytes, purpose: bytes) -> bytes:
    """A 32-byte subkey for one purpose, so one leaked use does not expose another."""
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=purpose).derive(secret)


class Vault:
    """Encrypts addresses and makes keyed hashes; the only holder of the secret."""

    def __init__(self, secret: bytes) -> None:
        if len(secret) < 16:
            raise ValueError("secret key must be at least 16 bytes")
        self._fernet = Fernet(base64.urlsafe_b64encode(_derive(secret, b"tipline/encrypt")))
        self._hash_key = _derive(secret, b"tipline/hash")

    def keyed_hash(self, value: str) -> str:
        """HMAC-SHA256 of a value, hex; stable for lookups, useless without the key."""
        return hmac.new(self._hash_key, value.encode(), hashlib.sha256).hexdigest()

    def encrypt(self, value: str) -> str:
        """Authenticated encryption of a short text."""
        return self._fernet.encrypt(value.encode()).decode("ascii")

    def decrypt(self, token: str) -> str | None:
        """Decrypt, or None when the token is not ours or was tampered with."""
        try:
            return self._fernet.decrypt(token.encode("ascii")).decode()
        except (InvalidToken, ValueError):
            return None
