"""The secret behind encryption and keyed hashes: from the environment or generated once."""

from __future__ import annotations

import logging
import os
import secrets

from bot.config import ConfigError, Settings

log = logging.getLogger(__name__)
KEY_FILE = "secret.key"
MIN_LENGTH = 32


def load_secret(settings: Settings) -> bytes:
    """TIPLINE_SECRET_KEY, or a key generated into the data folder with a warning."""
    if settings.secret_key:
        if len(settings.secret_key) < MIN_LENGTH:
            raise ConfigError(f"invalid TIPLINE_SECRET_KEY: use at least {MIN_LENGTH} characters")
        return settings.secret_key.encode()
    path = settings.data_dir / KEY_FILE
    if path.exists():
        key = path.read_text(encoding="ascii", errors="replace").strip()
        if len(key) < MIN_LENGTH:
            raise ConfigError(f"invalid TIPLINE_SECRET_KEY: the key file {path} is damaged")
        return key.encode()
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    key = secrets.token_urlsafe(48)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="ascii") as handle:
        handle.write(key + "\n")
    log.warning(
        "TIPLINE_SECRET_KEY is not set: generated a key in %s. Back it up: without it, "
        "stored reply addresses cannot be decrypted.",
        path,
    )
    return key.encode()
