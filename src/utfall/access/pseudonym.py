"""Pseudonymous person keys and encryption of identity numbers at rest.

``person_key`` = HMAC-SHA256(secret key, canonical 12-digit identity number), hex.
It is stable for a given key, cannot be reversed without the key, and is the only
person identifier in anything meant for analysis.
"""

from __future__ import annotations

import hashlib
import hmac

from cryptography.fernet import Fernet


def person_key(canonical_number: str, secret_key: bytes) -> str:
    """Keyed hash of a canonical identity number (64 hex characters)."""
    return hmac.new(secret_key, canonical_number.encode(), hashlib.sha256).hexdigest()


class IdentityVault:
    """Encrypts and decrypts identity numbers (Fernet: AES-128-CBC + HMAC)."""

    def __init__(self, encryption_key: bytes) -> None:
        self._fernet = Fernet(encryption_key)

    def encrypt(self, canonical_number: str) -> bytes:
        """Ciphertext of the identity number."""
        return self._fernet.encrypt(canonical_number.encode())

    def decrypt(self, token: bytes) -> str:
        """The identity number back from its ciphertext."""
        return self._fernet.decrypt(token).decode()
