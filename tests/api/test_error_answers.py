"""app/api/errors.py: which errors are the caller's (400) and how FastAPI's are described."""

from __future__ import annotations

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine

from app.api.errors import describe_bad_requests, refused_input, validation_problems
from app.config import Settings
from app.db.engine import create_engine


@pytest.mark.parametrize(
    ("statement", "value", "says"),
    [
        ("SELECT CAST(:value AS text)", "a\x00b", "0x00"),
        ("SELECT CAST(:value AS bigint)", 2**70, "int64"),
        ("SELECT CAST(CAST(:value AS text) AS smallint)", "100000", "out of range"),
        ("SELECT CAST(CAST(:value AS text) AS timestamptz)", "300000-01-01", "out of range"),
        ("SELECT 'x' ~ :value", "(", "regular expression"),
    ],
    ids=["nul", "past int64", "smallint", "timestamp", "regex"],
)
async def test_values_the_database_refuses_are_the_callers(
    engine: AsyncEngine, statement: str, value: object, says: str
) -> None:
    with pytest.raises(DBAPIError) as raised:
        async with engine.connect() as connection:
            await connection.execute(text(statement), {"value": value})
    reason = refused_input(raised.value)
    assert reason is not None and says in reason, reason
    assert not reason.startswith("<class"), reason


async def test_an_outage_is_not_the_callers(database_url: str) -> None:
    # Nothing listens on port 1: refused connections are outages (503), never a 400.
    unreachable = database_url.replace("127.0.0.1:5432", "127.0.0.1:1")
    engine = create_engine(Settings(database_url=unreachable), unreachable, pool_size=1)
    try:
        with pytest.raises(Exception) as raised:
            async with engine.connect() as connection:
                await connection.execute(text("SELECT 1"))
        assert refused_input(raised.value) is None
    finally:
        await engine.dispose()


async def test_programming_errors_are_not_the_callers(engine: AsyncEngine) -> None:
    with pytest.raises(DBAPIError) as raised:
        async with engine.connect() as connection:
            await connection.execute(text("SELECT no_such_column FROM projects"))
    assert refused_input(raised.value) is None


def test_validation_problems_name_each_parameter() -> None:
    problems = validation_problems(
        [
            {
                "loc": ("query", "limit"),
                "msg": "Input should be less than or equal to 100",
                "input": "1000",
                "type": "less_than_equal",
            },
            {
                "loc": ("path", "trace_id"),
                "msg": "Field required",
                "input": None,
                "type": "missing",
            },
            {"loc": ("body", "status"), "msg": "Input should be 'resolved'", "type": "enum"},
            {
                "loc": ("body", 1),
                "msg": "JSON decode error",
                "type": "json_invalid",
                "ctx": {"error": "Expecting value"},
            },
        ]  # fmt: skip
    )
    assert problems == [
        "limit '1000' is not accepted: input should be less than or equal to 100",
        "trace_id is not accepted: field required",
        "status: Input should be 'resolved'",
        "body is not valid JSON: Expecting value",
    ]


def test_the_document_describes_400_not_fastapis_422() -> None:
    validation_error = {"content": {"application/json": {"schema": {"$ref": "x"}}}}
    schema = {
        "paths": {"/a": {"get": {"responses": {"200": {}, "422": validation_error}}}},
        "components": {"schemas": {"HTTPValidationError": {}, "ValidationError": {}, "Kept": {}}},
    }
    describe_bad_requests(schema)
    responses = schema["paths"]["/a"]["get"]["responses"]
    assert set(responses) == {"200", "400"}
    assert responses["400"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/Error"
    }
    assert set(schema["components"]["schemas"]) == {"Kept", "Error"}
