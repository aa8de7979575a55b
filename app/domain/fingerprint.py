"""Error grouping: message normalization and the fingerprint that decides an error's group."""

from __future__ import annotations

import hashlib
import ipaddress
import json
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from app.domain.stacktrace import Frame, parse_stacktrace

MAX_MESSAGE_LENGTH = 1024
DEFAULT_ERROR_TYPE = "Error"
# Part of every hash but not of `components`: bumping it regroups everything on purpose, the way
# Sentry versions its grouping configs, instead of silently when the algorithm changes.
GROUPING_VERSION = "1"

_DEFAULT_PLACEHOLDER = re.compile(r"^\{\{\s*default\s*\}\}$", re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class Fingerprint:
    value: str  # 32 lowercase hex chars: the first 16 bytes of sha256 over the components
    message_template: str  # normalized message, used as the group's display message
    components: tuple[str, ...]  # what went into the hash, for debugging / tests


# --- Message normalization ---------------------------------------------------------------------

# Applied in this order so that the more specific pattern claims its text first: a URL holding
# an IP or an email stays one `<url>`, a UUID does not become `<hex>`/`<num>` pieces, a timestamp
# is not read as numbers (or as an IPv6 address) and the digits of an IP are gone before `<num>`.
_URL = re.compile(r"\b[a-z][a-z0-9+.-]*://[^\s'\"<>`]*[^\s'\"<>`.,;:!?)\]}]", re.IGNORECASE)
_EMAIL = re.compile(r"(?<![\w.+-])[\w.+-]+@[a-z0-9-]+(?:\.[a-z0-9-]+)+", re.IGNORECASE)
_UUID = re.compile(
    r"(?<![0-9a-f-])[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}(?![0-9a-f-])",
    re.IGNORECASE,
)
# Candidates only; `ipaddress` decides, so `12:34:56` or `a:b:c` are left for later patterns.
_IPV6_CANDIDATE = re.compile(
    r"(?<![\w:.])(?=[:.]*[0-9a-f])(?:[0-9a-f]{0,4}:){2,7}(?:\d{1,3}(?:\.\d{1,3}){3}|[0-9a-f]{1,4})?(?![\w:]|\.\d)",
    re.IGNORECASE,
)
_TIMESTAMP = re.compile(
    r"(?<!\d)\d{4}-\d{2}-\d{2}"
    r"(?:[T ]\d{2}:\d{2}(?::\d{2}(?:[.,]\d+)?)?(?:\s?Z|\s?[+-]\d{2}:?\d{2}|\s?UTC)?)?(?!\d)"
    r"|(?<![\d:])\d{1,2}:\d{2}:\d{2}(?:[.,]\d+)?(?:Z|[+-]\d{2}:?\d{2})?(?![\d:])"
)
_IPV4_CANDIDATE = re.compile(r"(?<![\w.])(?:\d{1,3}\.){3}\d{1,3}(?![\w]|\.\d)")
# Bare hex needs a digit and a letter and 8+ chars: ids and digests, not words like `deadbeef`
# or `cafe`. `_` and `-` count as separators so `req_8f3a9c2b` and `order_12345` are caught.
_HEX = re.compile(
    r"(?<![A-Za-z0-9])(?:0x[0-9a-f]+|(?=[0-9a-f]*\d)(?=[0-9a-f]*[a-f])[0-9a-f]{8,})(?![A-Za-z0-9])",
    re.IGNORECASE,
)
# Letters may follow, so units go with the value: `1500ms` and `2300ms` both become `<num>ms`.
_NUMBER = re.compile(r"(?<![A-Za-z0-9.])[-+]?\d+(?:\.\d+)*(?:e[-+]?\d+)?")
# Quotes must stand apart from words so the apostrophes in "can't" and "user's" are not quotes.
_QUOTED = re.compile(r"(?<!\w)(?:'[^'\n]*'|\"[^\"\n]*\"|`[^`\n]*`)(?!\w)")
_WHITESPACE = re.compile(r"\s+")


_Replacement = str | Callable[[re.Match[str]], str]


def _ip_or_original(
    kind: type[ipaddress.IPv4Address] | type[ipaddress.IPv6Address],
) -> Callable[[re.Match[str]], str]:
    def replace(match: re.Match[str]) -> str:
        text = match.group(0)
        try:
            kind(text)
        except ValueError:
            return text
        return "<ip>"

    return replace


_RULES: tuple[tuple[re.Pattern[str], _Replacement], ...] = (
    (_URL, "<url>"),
    (_EMAIL, "<email>"),
    (_UUID, "<uuid>"),
    (_IPV6_CANDIDATE, _ip_or_original(ipaddress.IPv6Address)),
    (_TIMESTAMP, "<timestamp>"),
    (_IPV4_CANDIDATE, _ip_or_original(ipaddress.IPv4Address)),
    (_HEX, "<hex>"),
    (_NUMBER, "<num>"),
    (_QUOTED, "<str>"),
)


def normalize_message(message: str) -> str:
    """Replaces the variable parts of an error message with placeholders such as `<num>`.

    Messages are cut to `MAX_MESSAGE_LENGTH` characters first, so huge payloads pasted into an
    error neither cost regex time nor make otherwise identical messages differ in their tails.
    """
    text = message[:MAX_MESSAGE_LENGTH]
    for pattern, replacement in _RULES:
        text = pattern.sub(replacement, text)
    return _WHITESPACE.sub(" ", text).strip()


# --- Fingerprints ------------------------------------------------------------------------------


def _normalize_type(error_type: str | None) -> str:
    cleaned = (error_type or "").strip()
    return cleaned or DEFAULT_ERROR_TYPE


_URL_ORIGIN = re.compile(r"^[a-z][a-z0-9+.-]*://[^/]*", re.IGNORECASE)


def _frame_location(frame: Frame) -> str | None:
    if frame.module:
        return frame.module
    if not frame.filename:
        return None
    # The same bundle served from another host (CDN, staging, localhost) is the same code.
    return _URL_ORIGIN.sub("", frame.filename.replace("\\", "/")) or None


def _frame_components(frames: Sequence[Frame]) -> list[str]:
    if any(frame.in_app is True for frame in frames):
        frames = [frame for frame in frames if frame.in_app is True]
    components: list[str] = []
    for frame in frames:
        location = _frame_location(frame)
        if location is None and frame.function is None:
            continue  # e.g. `at async Promise.all (index 0)`: nothing stable to group on
        component = f"frame:{location or '?'}:{frame.function or '?'}"
        # Recursion: the depth varies with the input, not with the bug.
        if not components or components[-1] != component:
            components.append(component)
    return components


def default_components(
    error_type: str | None,
    message_template: str,
    stacktrace: str | list[dict] | Sequence[Frame] | None,
) -> list[str]:
    """The components of Sentry-style default grouping, without any custom fingerprint."""
    components = [f"type:{_normalize_type(error_type)}"]
    frames = _frame_components(as_frames(stacktrace))
    if frames:
        components.extend(frames)
    else:
        components.append(f"message:{message_template}")
    return components


def as_frames(stacktrace: str | list[dict] | Sequence[Frame] | None) -> Sequence[Frame]:
    """Frames already parsed are used as they are; text or frame dicts are parsed."""
    if isinstance(stacktrace, (list, tuple)) and stacktrace and isinstance(stacktrace[0], Frame):
        return stacktrace
    return parse_stacktrace(stacktrace)  # type: ignore[arg-type]


def _custom_items(custom: list[str] | str | None) -> list[str]:
    if custom is None:
        return []
    if isinstance(custom, str):
        return [custom] if custom.strip() else []
    # Blank items carry nothing to group on; a list of only blanks means "no custom fingerprint".
    return [str(item) for item in custom if item is not None and str(item).strip()]


def compute_fingerprint(
    *,
    error_type: str | None,
    message: str | None,
    stacktrace: str | list[dict] | Sequence[Frame] | None = None,
    custom: list[str] | str | None = None,
) -> Fingerprint:
    """Fingerprint of one error event; events with equal `value` belong to the same group.

    Follows Sentry's documented grouping ("Issue Grouping" and "SDK Fingerprinting" on
    docs.sentry.io): a client-supplied fingerprint wins; otherwise the exception type plus the
    stack's frames (module or file, and function; never line or column numbers; only the in-app
    frames when there are any; recursion collapsed); the normalized message only when there is
    no usable stack.

    A non-empty `custom` fingerprint replaces the default grouping; each `{{ default }}` item in it
    expands to the default components. Custom items are prefixed so that a custom value can never
    collide with a default component of another event.
    """
    template = normalize_message(message or "")
    items = _custom_items(custom)
    if items:
        components: list[str] = []
        for item in items:
            if _DEFAULT_PLACEHOLDER.match(item.strip()):
                components.extend(default_components(error_type, template, stacktrace))
            else:
                components.append(f"custom:{item}")
    else:
        components = default_components(error_type, template, stacktrace)
    # JSON encoding keeps the boundaries between components unambiguous whatever they contain.
    payload = json.dumps([GROUPING_VERSION, *components], ensure_ascii=False, separators=(",", ":"))
    digest = hashlib.sha256(payload.encode("utf-8")).hexdigest()[:32]
    return Fingerprint(value=digest, message_template=template, components=tuple(components))
