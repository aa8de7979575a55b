"""Tests for parsing Python, V8, Firefox/Safari and structured stack traces into frames."""

from __future__ import annotations

import json

import pytest

from app.domain.stacktrace import (
    MAX_FRAME_LINE_CHARS,
    Frame,
    guess_in_app,
    normalize_filename,
    parse_stacktrace,
    python_module_from_path,
)

PY_SIMPLE = """\
Traceback (most recent call last):
  File "/usr/local/lib/python3.11/asyncio/runners.py", line 190, in run
    return runner.run(main)
  File "<frozen importlib._bootstrap>", line 241, in _call_with_frames_removed
  File "/venv/lib/python3.11/site-packages/fastapi/routing.py", line 278, in app
    raw_response = await run_endpoint_function(
  File "app/services/chat.py", line 33, in reply
    return choices[0]
           ~~~~~~~^^^
  File "/srv/app/handlers.py", line 12, in handle
    reply(request)
ValueError: boom
"""

PY_CHAINED_CONTEXT = """\
Traceback (most recent call last):
  File "/srv/app/cache.py", line 8, in lookup
    return store[key]
KeyError: 'user:42'

During handling of the above exception, another exception occurred:

Traceback (most recent call last):
  File "/srv/app/views.py", line 20, in profile
    return load(user_id)
  File "/srv/app/loader.py", line 5, in load
    raise LookupError("missing user")
LookupError: missing user
"""

PY_CHAINED_CAUSE = """\
Traceback (most recent call last):
  File "/srv/app/db.py", line 3, in connect
    sock.connect(addr)
ConnectionRefusedError: [Errno 111] Connection refused

The above exception was the direct cause of the following exception:

Traceback (most recent call last):
  File "/srv/app/main.py", line 9, in start
    connect()
  File "/srv/app/db.py", line 5, in connect
    raise DatabaseError("down") from exc
app.db.DatabaseError: down
"""

V8_STACK = """\
TypeError: Cannot read properties of undefined (reading 'id')
    at Foo.render [as view] (https://cdn.example.com/static/js/main.3f2a1b9c.js?v=7:1:2045)
    at new Widget (/app/src/widget.js:5:11)
    at async loadUser (file:///app/src/users.mjs:30:7)
    at async Promise.all (index 0)
    at /app/node_modules/express/lib/router/index.js:284:7
    at process.processTicksAndRejections (node:internal/process/task_queues:95:5)
    at Generator.next (<anonymous>)
"""

FIREFOX_STACK = """\
Error: bob@example.com is not allowed
render/<@http://localhost:8080/assets/index-BxK3a9Zq.js:10:5
async*loadUser@http://localhost:8080/src/users.js:30:7
@http://localhost:8080/src/main.js:3:1
global code@http://localhost:8080/src/boot.js:1:1
map@[native code]
"""


def test_empty_and_unparseable_inputs_yield_no_frames() -> None:
    assert parse_stacktrace(None) == []
    assert parse_stacktrace("") == []
    assert parse_stacktrace([]) == []
    assert parse_stacktrace("just a message, no frames at all") == []
    assert parse_stacktrace("[not json") == []


def test_python_traceback_frames_in_call_order_with_fields() -> None:
    frames = parse_stacktrace(PY_SIMPLE)
    assert [f.function for f in frames] == [
        "run",
        "_call_with_frames_removed",
        "app",
        "reply",
        "handle",
    ]
    assert frames[0] == Frame(
        function="run",
        module=None,
        filename="/usr/local/lib/python3.11/asyncio/runners.py",
        lineno=190,
        colno=None,
        in_app=False,
    )
    assert frames[1].module == "importlib._bootstrap"
    assert frames[1].in_app is False
    assert frames[2].module == "fastapi.routing"
    assert frames[2].in_app is False
    assert frames[3] == Frame(
        function="reply",
        module="app.services.chat",
        filename="app/services/chat.py",
        lineno=33,
        colno=None,
        in_app=True,
    )
    # An absolute path outside site-packages has no reliable import root.
    assert frames[4].module is None
    assert frames[4].in_app is True


def test_python_caret_and_source_lines_are_not_frames() -> None:
    text = (
        "Traceback (most recent call last):\n"
        '  File "/srv/app/x.py", line 3, in foo\n'
        "    return data[0]\n"
        "           ~~~~^^^\n"
        "    [Previous line repeated 996 more times]\n"
        "RecursionError: maximum recursion depth exceeded\n"
    )
    assert parse_stacktrace(text) == [Frame("foo", None, "/srv/app/x.py", 3, None, True)]


def test_python_chained_during_handling_uses_last_block() -> None:
    frames = parse_stacktrace(PY_CHAINED_CONTEXT)
    assert [(f.filename, f.function, f.lineno) for f in frames] == [
        ("/srv/app/views.py", "profile", 20),
        ("/srv/app/loader.py", "load", 5),
    ]


def test_python_chained_direct_cause_uses_last_block() -> None:
    frames = parse_stacktrace(PY_CHAINED_CAUSE)
    assert [(f.function, f.lineno) for f in frames] == [("start", 9), ("connect", 5)]


def test_python_chain_separator_alone_splits_blocks() -> None:
    # Some loggers drop the "Traceback" header lines; the separator still ends the cause's block.
    text = (
        "Traceback (most recent call last):\n"
        '  File "/srv/app/cache.py", line 8, in lookup\n'
        "KeyError: 'k'\n\n"
        "During handling of the above exception, another exception occurred:\n\n"
        '  File "/srv/app/views.py", line 20, in profile\n'
        "LookupError: missing\n"
    )
    assert [f.function for f in parse_stacktrace(text)] == ["profile"]


def test_python_frames_without_header_are_parsed() -> None:
    text = '  File "/srv/app/x.py", line 3, in foo\n    foo()\n'
    assert parse_stacktrace(text) == [Frame("foo", None, "/srv/app/x.py", 3, None, True)]


def test_python_pseudo_files() -> None:
    frames = parse_stacktrace(
        'Traceback (most recent call last):\n  File "<stdin>", line 1, in <module>\n'
    )
    assert frames == [Frame("<module>", None, "<stdin>", 1, None, None)]


@pytest.mark.parametrize(
    ("path", "module"),
    [
        ("/venv/lib/python3.11/site-packages/fastapi/routing.py", "fastapi.routing"),
        ("/usr/lib/python3/dist-packages/requests/__init__.py", "requests"),
        (r"C:\venv\Lib\site-packages\requests\api.py", "requests.api"),
        ("/opt/site-packages/foo-1.0-py3.11.egg/foo/bar.py", "foo.bar"),
        ("app/services/chat.py", "app.services.chat"),
        ("./app/main.py", "app.main"),
        ("pkg/__init__.py", "pkg"),
        ("<frozen importlib._bootstrap_external>", "importlib._bootstrap_external"),
        ("/srv/app/x.py", None),
        ("C:/app/x.py", None),
        ("/usr/lib/python3.11/json/decoder.py", None),
        ("scripts/my-tool/run.py", None),
        ("app/static/main.js", None),
    ],
)
def test_python_module_from_path(path: str, module: str | None) -> None:
    assert python_module_from_path(path) == module


@pytest.mark.parametrize(
    ("filename", "in_app"),
    [
        ("/srv/app/handlers.py", True),
        ("app/x.py", True),
        ("/app/src/widget.js", True),
        ("https://example.com/static/app.js", True),
        ("/venv/lib/python3.12/site-packages/httpx/_client.py", False),
        ("/usr/lib/python3/dist-packages/yaml/__init__.py", False),
        ("/usr/lib/python3.11/asyncio/base_events.py", False),
        ("/home/u/.pyenv/versions/3.11.7/lib/python3.11/json/decoder.py", False),
        (r"C:\Python311\Lib\json\decoder.py", False),
        ("<frozen runpy>", False),
        ("/app/node_modules/react-dom/cjs/react-dom.development.js", False),
        ("node:internal/process/task_queues", False),
        ("node:fs", False),
        ("internal/modules/cjs/loader.js", False),
        ("native", False),
        ("[native code]", False),
        ("chrome-extension://abcdef/content.js", False),
        ("<anonymous>", None),
        ("<string>", None),
        (None, None),
        ("", None),
    ],
)
def test_guess_in_app(filename: str | None, in_app: bool | None) -> None:
    assert guess_in_app(filename) is in_app


def test_v8_stack_is_reversed_to_call_order_and_parsed() -> None:
    frames = parse_stacktrace(V8_STACK)
    assert frames == [
        Frame("Generator.next", None, "<anonymous>", None, None, None),
        Frame(
            "process.processTicksAndRejections",
            None,
            "node:internal/process/task_queues",
            95,
            5,
            False,
        ),
        Frame(None, None, "/app/node_modules/express/lib/router/index.js", 284, 7, False),
        Frame("Promise.all", None, None, None, None, None),
        Frame("loadUser", None, "file:///app/src/users.mjs", 30, 7, True),
        Frame("Widget", None, "/app/src/widget.js", 5, 11, True),
        Frame(
            "Foo.render", None, "https://cdn.example.com/static/js/main.<hash>.js", 1, 2045, True
        ),
    ]


def test_v8_message_line_is_not_a_frame() -> None:
    frames = parse_stacktrace("Error: at capacity (limit 10)\n    at run (/app/a.js:1:2)")
    assert [f.function for f in frames] == ["run"]


def test_v8_anonymous_async_and_eval_frames() -> None:
    text = (
        "Error: x\n"
        "    at async /app/src/job.js:4:9\n"
        "    at eval (eval at compile (/app/src/tpl.js:10:3), <anonymous>:1:5)\n"
        "    at Object.<anonymous> (/app/src/index.js:2:1)\n"
    )
    frames = parse_stacktrace(text)
    assert frames == [
        Frame("Object.<anonymous>", None, "/app/src/index.js", 2, 1, True),
        Frame("eval", None, "<anonymous>", 1, 5, None),
        Frame(None, None, "/app/src/job.js", 4, 9, True),
    ]


def test_v8_windows_path_and_line_without_column() -> None:
    frames = parse_stacktrace("    at main (C:\\app\\src\\main.js:12)")
    assert frames == [Frame("main", None, "C:\\app\\src\\main.js", 12, None, True)]


def test_firefox_and_safari_stack() -> None:
    frames = parse_stacktrace(FIREFOX_STACK)
    assert frames == [
        Frame("map", None, "[native code]", None, None, False),
        Frame("global code", None, "http://localhost:8080/src/boot.js", 1, 1, True),
        Frame(None, None, "http://localhost:8080/src/main.js", 3, 1, True),
        Frame("loadUser", None, "http://localhost:8080/src/users.js", 30, 7, True),
        Frame("render", None, "http://localhost:8080/assets/index-<hash>.js", 10, 5, True),
    ]


@pytest.mark.parametrize(
    ("raw", "normalized"),
    [
        ("https://cdn.example.com/js/app.js?v=123#frag", "https://cdn.example.com/js/app.js"),
        ("/static/js/main.3f2a1b.js", "/static/js/main.<hash>.js"),
        ("/static/js/2.a1b2c3d4.chunk.js", "/static/js/2.<hash>.chunk.js"),
        ("/assets/index-BxK3a9Zq.js", "/assets/index-<hash>.js"),
        ("/src/App.tsx?t=1699999999", "/src/App.tsx"),
        # No digit, too short, or a version: not build hashes.
        ("/static/js/facade.js", "/static/js/facade.js"),
        ("/vendor/jquery-3.6.0.min.js", "/vendor/jquery-3.6.0.min.js"),
        ("/src/my-Settings.js", "/src/my-Settings.js"),
        ("<anonymous>", "<anonymous>"),
    ],
)
def test_normalize_filename(raw: str, normalized: str) -> None:
    assert normalize_filename(raw) == normalized


STRUCTURED = [
    {
        "filename": "/venv/lib/python3.11/site-packages/starlette/routing.py",
        "function": "handle",
        "lineno": 70,
    },
    {"abs_path": "/srv/app/api.py", "function": "create", "lineno": "41", "in_app": True},
    {"filename": "app/core.py", "function": "run", "module": "custom.mod", "in_app": False},
    "not a frame",
    {"function": "mystery", "lineno": True, "colno": 3},
]


def test_structured_frames() -> None:
    frames = parse_stacktrace(STRUCTURED)
    assert frames == [
        Frame(
            "handle",
            "starlette.routing",
            "/venv/lib/python3.11/site-packages/starlette/routing.py",
            70,
            None,
            False,
        ),
        Frame("create", None, "/srv/app/api.py", 41, None, True),
        # Explicit module and in_app from the client are kept as sent.
        Frame("run", "custom.mod", "app/core.py", None, None, False),
        # No file and no in_app: in-app-ness is unknown; a bool is not a line number.
        Frame("mystery", None, None, None, 3, None),
    ]


def test_structured_frames_as_json_text() -> None:
    assert parse_stacktrace(json.dumps(STRUCTURED)) == parse_stacktrace(STRUCTURED)


def test_structured_js_frames_normalize_filenames() -> None:
    frames = parse_stacktrace(
        [{"filename": "https://x.io/main.3f2a1b.js?v=1", "function": "f", "lineno": 1, "colno": 9}]
    )
    assert frames == [Frame("f", None, "https://x.io/main.<hash>.js", 1, 9, True)]


def test_javascript_lines_too_long_for_a_frame_are_not_read_as_frames() -> None:
    # On one long line the frame patterns backtrack quadratically; such a line is no frame.
    long_line = "    at " + "f" * MAX_FRAME_LINE_CHARS + " (app.js:1:2)"
    stack = f"Error: boom\n{long_line}\n    at handler (server.js:10:5)"
    assert [frame.function for frame in parse_stacktrace(stack)] == ["handler"]
    assert parse_stacktrace("at a (" * 3000) == []
