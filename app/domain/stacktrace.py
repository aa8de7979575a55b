"""Parsing of error stack traces (Python, V8, Firefox/Safari, structured frames) into frames."""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class Frame:
    """One stack frame. Lists of frames are ordered outermost call first, crashing frame last."""

    function: str | None
    module: str | None
    filename: str | None
    lineno: int | None
    colno: int | None
    in_app: bool | None


# --- Python tracebacks -------------------------------------------------------------------------

_PY_HEADER = "Traceback (most recent call last):"
_PY_CHAIN_SEPARATOR = re.compile(
    r"^[ \t]*(?:During handling of the above exception, another exception occurred:"
    r"|The above exception was the direct cause of the following exception:)[ \t]*$",
    re.MULTILINE,
)
# The `|` prefix lets the frames of an ExceptionGroup traceback (3.11+) match as well.
_PY_FRAME = re.compile(
    r'^[ \t|]*File "(?P<path>[^"\n]*)", line (?P<lineno>\d+)(?:, in (?P<func>[^\n]*?))?[ \t]*$',
    re.MULTILINE,
)
_PACKAGES_DIR = re.compile(r"(?:^|/)(?:site|dist)-packages/", re.IGNORECASE)
# Interpreter installs: /usr/lib/python3.11/, ~/.pyenv/versions/3.11.7/lib/python3.11/,
# C:/Python311/Lib/ — checked after site-/dist-packages, which also sit under these.
_PY_STDLIB_DIR = re.compile(r"(?:^|/)lib/python\d+(?:\.\d+)?t?/|/python\d+/lib/", re.IGNORECASE)
_WINDOWS_DRIVE = re.compile(r"^[A-Za-z]:/")


def _parse_python(text: str) -> list[Frame]:
    # A chained traceback prints the causes first; the block after the last separator (and after
    # its last header, in case several tracebacks were logged back to back) is the one raised.
    block = _PY_CHAIN_SEPARATOR.split(text)[-1]
    header = block.rfind(_PY_HEADER)
    if header != -1:
        block = block[header:]
    frames = []
    for match in _PY_FRAME.finditer(block):
        path = match.group("path").strip() or None
        func = (match.group("func") or "").strip() or None
        frames.append(
            Frame(
                function=func,
                module=python_module_from_path(path) if path else None,
                filename=path,
                lineno=int(match.group("lineno")),
                colno=None,
                in_app=guess_in_app(path),
            )
        )
    return frames


def python_module_from_path(path: str) -> str | None:
    """Dotted module for a Python file inside site-/dist-packages or given relatively, else None.

    Absolute paths outside a packages directory have no reliable import root, so they get none.
    """
    normalized = path.replace("\\", "/")
    if normalized.startswith("<frozen ") and normalized.endswith(">"):
        return normalized[len("<frozen ") : -1].strip() or None
    if not normalized.endswith(".py"):
        return None
    # The innermost packages dir wins, e.g. a venv created inside another installation.
    packages = max(_PACKAGES_DIR.finditer(normalized), key=lambda m: m.end(), default=None)
    if packages is not None:
        relative = normalized[packages.end() :]
    elif normalized.startswith(("/", "~")) or _WINDOWS_DRIVE.match(normalized):
        return None
    else:
        relative = normalized
    parts = [part for part in relative[: -len(".py")].split("/") if part not in ("", ".", "..")]
    # Zipped eggs put the package one level down: site-packages/foo-1.0-py3.11.egg/foo/bar.py.
    while parts and parts[0].endswith(".egg"):
        parts.pop(0)
    if parts and parts[-1] == "__init__":
        parts.pop()
    if not parts or not all(part.isidentifier() for part in parts):
        return None
    return ".".join(parts)


# --- JavaScript stacks -------------------------------------------------------------------------

_V8_LINE = re.compile(r"^\s*at\s+(?P<body>.+?)\s*$")
_V8_CALL = re.compile(r"^(?P<func>.+?)\s+\((?P<loc>.*)\)$")
_FIREFOX_LINE = re.compile(r"^\s*(?P<func>[^@\s]*(?: [^@\s]+)*)@(?P<loc>\S.*?)\s*$")
_LOCATION = re.compile(r"^(?P<file>.+?):(?P<line>\d+)(?::(?P<col>\d+))?$")
_V8_ALIAS = re.compile(r"\s+\[as [^\]]*\]$")
_FIREFOX_NESTED = re.compile(r"/?<+$")
_PROMISE_INDEX = re.compile(r"^index \d+$")
_NATIVE_LOCATIONS = frozenset({"native", "[native code]"})
MAX_FRAME_LINE_CHARS = 2048


def _parse_location(loc: str) -> tuple[str | None, int | None, int | None]:
    loc = loc.strip()
    # `eval at foo (a.js:1:2), <anonymous>:3:4`: the position inside the evaluated code is last.
    if loc.startswith("eval at ") and ", " in loc:
        loc = loc.rsplit(", ", 1)[-1]
    if not loc or _PROMISE_INDEX.match(loc):
        return None, None, None
    match = _LOCATION.match(loc)
    if match is None:
        return normalize_filename(loc), None, None
    col = match.group("col")
    return (
        normalize_filename(match.group("file")),
        int(match.group("line")),
        int(col) if col else None,
    )


def _clean_js_function(name: str | None) -> str | None:
    if not name:
        return None
    name = _V8_ALIAS.sub("", name.strip())
    # Firefox marks async boundaries as `async*fn` or `promise callback*fn`.
    name = name.rpartition("*")[2].strip()
    # `async fn` and `new Foo` name the same code as `fn` and `Foo`; keeping the keyword would split
    # a group whenever the caller switches between await/then or a factory/constructor.
    for prefix in ("async ", "new "):
        if name.startswith(prefix):
            name = name[len(prefix) :].strip()
    name = _FIREFOX_NESTED.sub("", name)
    return name or None


def _js_frame(func: str | None, loc: str) -> Frame:
    filename, lineno, colno = _parse_location(loc)
    return Frame(
        function=_clean_js_function(func),
        module=None,
        filename=filename,
        lineno=lineno,
        colno=colno,
        in_app=guess_in_app(filename),
    )


def _parse_v8_body(body: str) -> Frame:
    call = _V8_CALL.match(body)
    if call is not None:
        return _js_frame(call.group("func"), call.group("loc"))
    if body.startswith("async "):
        body = body[len("async ") :]
    # `at file.js:1:2` has no name, but `at <anonymous>` / `at native` name no location either.
    return _js_frame(None, body)


def _is_firefox_location(loc: str) -> bool:
    # Requiring a position (or Safari's native marker) keeps message lines such as
    # `Error: bob@example.com not found` from being read as frames.
    return loc in _NATIVE_LOCATIONS or _LOCATION.match(loc) is not None


def _parse_javascript(text: str) -> list[Frame]:
    # A frame is one short line; on one long line the patterns above take quadratic time
    # (16 KB of `at a (` took 0.4 s), so longer lines are not read as frames.
    lines = [line for line in text.splitlines() if len(line) <= MAX_FRAME_LINE_CHARS]
    v8_bodies = [m.group("body") for m in map(_V8_LINE.match, lines) if m is not None]
    if v8_bodies:
        frames = [_parse_v8_body(body) for body in v8_bodies]
    else:
        frames = []
        for line in lines:
            match = _FIREFOX_LINE.match(line)
            if match is not None and _is_firefox_location(match.group("loc")):
                frames.append(_js_frame(match.group("func"), match.group("loc")))
    # JavaScript engines print the crashing frame first; frames here are outermost first.
    frames.reverse()
    return frames


# --- Structured frames -------------------------------------------------------------------------


def _first(frame: Mapping[str, Any], *keys: str) -> Any:
    for key in keys:
        value = frame.get(key)
        if value is not None and value != "":
            return value
    return None


def _as_int(value: Any) -> int | None:
    if isinstance(value, bool):  # bool is an int subclass, but never a line number
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        return int(value.strip())
    return None


def _as_str(value: Any) -> str | None:
    if value is None:
        return None
    text = str(value).strip()
    return text or None


def _parse_dicts(items: Iterable[Any]) -> list[Frame]:
    frames = []
    for item in items:
        if not isinstance(item, Mapping):
            continue
        raw_filename = _as_str(_first(item, "filename", "abs_path", "file", "fileName"))
        filename = normalize_filename(raw_filename) if raw_filename else None
        module = _as_str(item.get("module"))
        if module is None and raw_filename is not None:
            module = python_module_from_path(raw_filename)
        in_app = item.get("in_app")
        if not isinstance(in_app, bool):
            in_app = guess_in_app(_as_str(_first(item, "abs_path", "filename", "file", "fileName")))
        frames.append(
            Frame(
                function=_as_str(_first(item, "function", "func", "method", "functionName")),
                module=module,
                filename=filename,
                lineno=_as_int(_first(item, "lineno", "line", "lineNumber")),
                colno=_as_int(_first(item, "colno", "col", "column", "columnNumber")),
                in_app=in_app,
            )
        )
    return frames


# --- Shared helpers ----------------------------------------------------------------------------

_URL_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:")
# Build hashes in bundle names: main.3f2a1b.js, 2.a1b2c3d4.chunk.js (webpack, CRA),
# index-BxK3a9Zq.js (Vite, Rollup). Needs a digit so words such as `facade` survive.
_BUILD_HASH = re.compile(
    r"(?<=[.-])(?=[0-9a-f]*\d)[0-9a-f]{6,}(?=\.)"
    r"|(?<=-)(?=[A-Za-z0-9_]*\d)(?=[A-Za-z0-9_]*[A-Za-z])[A-Za-z0-9_]{8}(?=\.[A-Za-z]+$)",
    re.IGNORECASE,
)


def normalize_filename(filename: str) -> str:
    """Drops URL query strings and fragments and replaces bundle build hashes with `<hash>`.

    Cache-busting queries and per-build hashes change between deploys of the same code, so keeping
    them would split one error into a group per release.
    """
    if filename.startswith("<") and filename.endswith(">"):
        return filename
    if _URL_SCHEME.match(filename) or "?" in filename or "#" in filename:
        filename = re.split(r"[?#]", filename, maxsplit=1)[0]
    head, sep, base = filename.rpartition("/")
    return head + sep + _BUILD_HASH.sub("<hash>", base)


def guess_in_app(filename: str | None) -> bool | None:
    """False for third-party and runtime code, True for other files, None when nothing says."""
    if not filename:
        return None
    path = filename.replace("\\", "/")
    lowered = path.lower()
    if lowered.startswith("<frozen"):
        return False
    if _PACKAGES_DIR.search(path) or "node_modules/" in lowered:
        return False
    if lowered.startswith(("node:", "internal/")) or lowered in _NATIVE_LOCATIONS:
        return False
    if lowered.startswith(("chrome-extension:", "moz-extension:", "safari-extension:")):
        return False
    if _PY_STDLIB_DIR.search(path):
        return False
    if path.startswith("<") and path.endswith(">"):  # <anonymous>, <string>, <stdin>
        return None
    return True


def parse_stacktrace(stack: str | list[dict] | None) -> list[Frame]:
    """Frames of a Python traceback, a V8 or Firefox/Safari stack, or a list of frame dicts.

    Frame dicts (or a JSON array of them) are taken to be outermost first, as Sentry sends them.
    Unrecognised input yields no frames rather than an error: grouping then falls back to the
    message.
    """
    if not stack:
        return []
    if isinstance(stack, list | tuple):
        return _parse_dicts(stack)
    if not isinstance(stack, str):
        return []
    text = stack.strip()
    if text.startswith("["):
        try:
            decoded = json.loads(text)
        except ValueError:
            decoded = None
        if isinstance(decoded, list):
            return _parse_dicts(decoded)
    if _PY_HEADER in text or _PY_FRAME.search(text):
        return _parse_python(text)
    return _parse_javascript(text)
