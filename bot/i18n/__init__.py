"""Message catalogs (Vietnamese default, English complete), loaded from TOML files."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

CATALOG_DIR = Path(__file__).parent
DEFAULT_LANGUAGE = "vi"
LANGUAGES = ("vi", "en")


def _flatten(table: dict[str, Any], prefix: str = "") -> dict[str, str]:
    flat: dict[str, str] = {}
    for key, value in table.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            flat.update(_flatten(value, name + "."))
        else:
            flat[name] = str(value)
    return flat


def load_catalog(language: str) -> dict[str, str]:
    """All messages of one language, keyed 'section.name'."""
    with (CATALOG_DIR / f"{language}.toml").open("rb") as handle:
        return _flatten(tomllib.load(handle))


class Catalog:
    """Translates message keys; unknown languages fall back to Vietnamese."""

    languages = LANGUAGES

    def __init__(self) -> None:
        self.messages = {language: load_catalog(language) for language in LANGUAGES}

    def __call__(self, language: str, key: str, /, **params: object) -> str:
        """The message for a key in a language, formatted with params."""
        messages = self.messages.get(language) or self.messages[DEFAULT_LANGUAGE]
        template = messages.get(key) or self.messages[DEFAULT_LANGUAGE].get(key)
        if template is None:
            raise KeyError(f"missing message {key!r}")
        return template.format(**params) if params else template

    def has(self, key: str) -> bool:
        """Whether the key exists in the default catalog."""
        return key in self.messages[DEFAULT_LANGUAGE]

    def section(self, language: str, prefix: str) -> dict[str, str]:
        """All messages of one section, e.g. the web page's strings."""
        messages = self.messages.get(language) or self.messages[DEFAULT_LANGUAGE]
        return {k[len(prefix) + 1 :]: v for k, v in messages.items() if k.startswith(prefix + ".")}
