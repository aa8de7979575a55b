"""/openapi.json and /docs: the API key schemes declared, Swagger UI served from the package.

The page works without network access: its script, stylesheet and icon come from
`app/vendor/swagger-ui` (see SOURCE.md there), and Swagger UI's online validator is off.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.openapi.utils import get_openapi
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

SWAGGER_UI_VERSION = "5.35.0"
ASSETS_DIR = Path(__file__).resolve().parents[1] / "vendor" / "swagger-ui"
ASSETS_PATH = "/docs/assets"
# Both ways of presenting a key (app/api/deps.py); either one authorizes a request.
SECURITY_SCHEMES: dict[str, Any] = {
    "bearer": {
        "type": "http",
        "scheme": "bearer",
        "description": "`Authorization: Bearer <key>` with a key from `telemetry-collector "
        "keys create`",
    },
    "apiKey": {
        "type": "apiKey",
        "in": "header",
        "name": "x-api-key",
        "description": "`x-api-key: <key>`, the same key without the Bearer scheme",
    },
}
SECURED_PREFIXES = ("/v1/", "/api/v1/")


def inline_definitions(schema: dict[str, Any]) -> dict[str, Any]:
    """A pydantic JSON schema with each `$ref` into its `$defs` replaced by the definition.

    A request body described through `openapi_extra` is not registered in the document's
    components, so references into its own `$defs` would dangle in /openapi.json.
    """
    definitions = schema.pop("$defs", {})

    def resolve(node: Any, seen: frozenset[str]) -> Any:
        if isinstance(node, list):
            return [resolve(item, seen) for item in node]
        if not isinstance(node, dict):
            return node
        ref = node.get("$ref")
        if isinstance(ref, str) and ref.startswith("#/$defs/"):
            name = ref.removeprefix("#/$defs/")
            if name in seen:
                raise ValueError(f"schema {name} refers to itself and cannot be inlined")
            rest = {key: resolve(value, seen) for key, value in node.items() if key != "$ref"}
            return {**resolve(definitions[name], seen | {name}), **rest}
        return {key: resolve(value, seen) for key, value in node.items()}

    return resolve(schema, frozenset())


def openapi_document(app: FastAPI) -> dict[str, Any]:
    if app.openapi_schema is None:
        document = get_openapi(
            title=app.title, version=app.version, description=app.description, routes=app.routes
        )
        document.setdefault("components", {})["securitySchemes"] = SECURITY_SCHEMES
        for path, item in document["paths"].items():
            if path.startswith(SECURED_PREFIXES):
                for operation in item.values():
                    operation["security"] = [{"bearer": []}, {"apiKey": []}]
        app.openapi_schema = document
    return app.openapi_schema


def install_docs(app: FastAPI) -> None:
    """Serve /docs from packaged assets; create the app with docs_url=None, redoc_url=None."""
    app.openapi = lambda: openapi_document(app)  # type: ignore[method-assign]
    app.mount(ASSETS_PATH, StaticFiles(directory=ASSETS_DIR), name="docs-assets")

    @app.get("/docs", include_in_schema=False)
    async def docs() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url=app.openapi_url or "/openapi.json",
            title=f"{app.title}: API",
            swagger_js_url=f"{ASSETS_PATH}/swagger-ui-bundle.js",
            swagger_css_url=f"{ASSETS_PATH}/swagger-ui.css",
            swagger_favicon_url=f"{ASSETS_PATH}/favicon-32x32.png",
            # No online validator badge: it would send the document to validator.swagger.io.
            swagger_ui_parameters={"validatorUrl": None, "persistAuthorization": True},
        )
