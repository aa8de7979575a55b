"""Redaction of sensitive attribute values (secrets, credentials) before anything is stored."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

REDACTED = "[REDACTED]"

DEFAULT_REDACT_KEYS: tuple[str, ...] = (
    "password",
    "passwd",
    "secret",
    "token",
    "api_key",
    "apikey",
    "authorization",
    "cookie",
    "set-cookie",
    "private_key",
    "credential",
)

# Attribute keys come from clients, so the per-key verdict cache must not grow without bound.
_CACHE_LIMIT = 8192


def _normalise(key: str) -> str:
    # `x-api-key` and `x_api_key` are the same header; folding `-` into `_` lets one configured
    # spelling (`api_key`) cover both, and `set-cookie` still matches itself.
    return key.lower().replace("-", "_")


class Redactor:
    """Replaces the values of sensitive attribute keys with `REDACTED`.

    A key is sensitive when, compared case-insensitively and with `-` treated as `_`, it equals a
    configured key or ends with one right after a separator (`.`, `_` or `-`). So
    `http.request.header.authorization`, `db.password`, `user_api_key` and `x-auth-token` are
    redacted, while `max_tokens` or `gen_ai.usage.input_tokens` are not: `tokens` is not `token`,
    and those keys hold counts that cost reporting needs.

    Nested maps (kvlist values) and maps inside lists are redacted too. The whole value of a
    sensitive key is replaced, whatever its type.
    """

    __slots__ = ("_whole", "_suffixes", "_cache")

    def __init__(self, keys: Iterable[str]) -> None:
        names = {_normalise(key.strip()) for key in keys if key and key.strip()}
        self._whole = frozenset(names)
        # Only `.` and `_` are needed here: `-` was folded into `_` by _normalise.
        self._suffixes = tuple(sorted(sep + name for name in names for sep in "._"))
        self._cache: dict[str, bool] = {}

    def is_sensitive(self, key: str) -> bool:
        verdict = self._cache.get(key)
        if verdict is None:
            verdict = self._classify(key)
        return verdict

    def _classify(self, key: str) -> bool:
        if not isinstance(key, str):
            return False
        normalised = _normalise(key)
        verdict = normalised in self._whole or normalised.endswith(self._suffixes)
        if len(self._cache) >= _CACHE_LIMIT:
            # Dropping everything is crude but O(1) amortised; real key sets are small and refill
            # within one batch.
            self._cache.clear()
        self._cache[key] = verdict
        return verdict

    def redact(self, attributes: dict[str, Any]) -> dict[str, Any]:
        """Redacted attributes: the same object when nothing matched, else a new dict.

        The input is never modified, so a caller may keep using the original.
        """
        cache = self._cache
        copy: dict[str, Any] | None = None
        for key, value in attributes.items():
            sensitive = cache.get(key)
            if sensitive is None:
                sensitive = self._classify(key)
            if sensitive:
                if value == REDACTED:
                    continue
                new: Any = REDACTED
            elif type(value) is dict:
                new = self.redact(value)
            elif type(value) is list:
                new = self._redact_list(value)
            else:
                continue
            if new is not value:
                if copy is None:
                    copy = dict(attributes)
                copy[key] = new
        return attributes if copy is None else copy

    def _redact_list(self, values: list[Any]) -> list[Any]:
        copy: list[Any] | None = None
        for index, value in enumerate(values):
            if type(value) is dict:
                new: Any = self.redact(value)
            elif type(value) is list:
                new = self._redact_list(value)
            else:
                continue
            if new is not value:
                if copy is None:
                    copy = list(values)
                copy[index] = new
        return values if copy is None else copy
