"""Secrets at rest: what the `secrets` table holds (EPM's rotating refresh token) is encrypted with a key from
the environment, `JOBSTATUS_SECRET_KEYS`, so a backup or a copy of the database carries no live credential.

`cryptography`'s Fernet (AES-128-CBC and HMAC-SHA256, with a timestamp; cryptography.io/en/latest/fernet/)
through MultiFernet, so keys can be rotated: the first key encrypts, every key decrypts, and
`MultiFernet.rotate` re-encrypts a value under the first key. A stored value is `fernet:<token>`; a value
without the prefix is a plaintext row written before encryption came, encrypted at the next start
(`Store.seal_secrets`).

No message here or in an exception holds a secret or a key: a key is named by its place in the list.
"""

from __future__ import annotations

from cryptography.fernet import Fernet, InvalidToken, MultiFernet

from bot.support.config import ConfigError

PREFIX = "fernet:"
VARIABLE = "JOBSTATUS_SECRET_KEYS"
MAKE_KEY = ("python -c 'from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())'")


class SecretKeyError(ConfigError):
    """The key to the stored secrets is missing, malformed or wrong. The text says what to set; it names no
    secret."""


def missing_key(why: str) -> SecretKeyError:
    return SecretKeyError(f"{why}: set {VARIABLE} to a Fernet key (make one with: {MAKE_KEY}); "
                          "to rotate, put the new key first and keep the old one after it, comma-separated")


class Sealer:
    """Encrypts and decrypts stored secrets with the keys of `JOBSTATUS_SECRET_KEYS` (comma-separated; the
    first encrypts, all decrypt). Without keys (`keys` empty) it can do neither: `ready` is False."""

    def __init__(self, keys: str | None) -> None:
        given = [k.strip() for k in (keys or "").split(",") if k.strip()]
        fernets = []
        for n, key in enumerate(given, 1):
            try:
                fernets.append(Fernet(key))
            except (ValueError, TypeError):
                raise SecretKeyError(
                    f"{VARIABLE}: key {n} of {len(given)} is not a Fernet key "
                    "(32 bytes in url-safe base64, 44 characters); "
                    f"make one with: {MAKE_KEY}") from None
        self._fernet = MultiFernet(fernets) if fernets else None
        self._first = fernets[0] if fernets else None

    @property
    def ready(self) -> bool:
        return self._fernet is not None

    def seal(self, value: str, what: str) -> str:
        """The stored form of `value` (the secret `what`), encrypted under the first key."""
        if self._fernet is None:
            raise missing_key(f"the rotated secret {what} cannot be stored unencrypted")
        return PREFIX + self._fernet.encrypt(value.encode()).decode()

    def open(self, stored: str, what: str) -> str:
        """The secret `what` from its stored form; SecretKeyError when no key given opens it."""
        if not stored.startswith(PREFIX):
            return stored  # written before encryption came; `Store.seal_secrets` encrypts it at start
        if self._fernet is None:
            raise missing_key(f"the stored secret {what} is encrypted")
        try:
            return self._fernet.decrypt(stored[len(PREFIX):].encode()).decode()
        except InvalidToken:
            raise self.wrong_key(what) from None

    def reseal(self, stored: str, what: str) -> str | None:
        """`stored` encrypted under the first key (a plaintext row encrypted, an older key's row rotated), or
        None when it already is."""
        if not stored.startswith(PREFIX):
            return self.seal(stored, what)
        if self._fernet is None or self._first is None:
            raise missing_key(f"the stored secret {what} is encrypted")
        token = stored[len(PREFIX):].encode()
        try:
            self._first.decrypt(token)
            return None
        except InvalidToken:
            pass
        try:
            return PREFIX + self._fernet.rotate(token).decode()
        except InvalidToken:
            raise self.wrong_key(what) from None

    @staticmethod
    def wrong_key(what: str) -> SecretKeyError:
        return SecretKeyError(
            f"the stored secret {what} does not open with any key of {VARIABLE}: "
            "set the key it was stored with (after rotating, keep the old key after the new one). "
            "If that key is lost, delete the row "
            f"(DELETE FROM secrets WHERE key = '{what}') and put a new refresh token in the config")
