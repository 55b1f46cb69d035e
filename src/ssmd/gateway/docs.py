"""Browsable API docs that work offline: Swagger UI served from the `swagger-ui-bundle`
wheel's files (no CDN), at /docs, reading /openapi.json."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse
from starlette.staticfiles import StaticFiles


def _assets() -> Path | None:
    try:
        import swagger_ui_bundle
    except ImportError:
        return None
    return Path(swagger_ui_bundle.swagger_ui_path)


def mount(app: FastAPI) -> None:
    assets = _assets()
    if assets is not None:
        app.mount("/docs/assets", StaticFiles(directory=assets), name="docs-assets")

    @app.get("/docs", include_in_schema=False)
    async def swagger() -> HTMLResponse:
        if assets is None:
            return HTMLResponse(_plain(app))
        return get_swagger_ui_html(
            openapi_url="/openapi.json",
            title=f"{app.title} — API",
            swagger_js_url="/docs/assets/swagger-ui-bundle.js",
            swagger_css_url="/docs/assets/swagger-ui.css",
            swagger_favicon_url="/docs/assets/favicon-32x32.png",
        )


def _plain(app: FastAPI) -> str:
    """Without the bundle: a plain list of the paths (still no network)."""
    from html import escape

    rows = []
    for path, ops in app.openapi().get("paths", {}).items():
        for method, op in ops.items():
            rows.append(
                f"<li><code>{method.upper()} {escape(path)}</code> — "
                f"{escape(op.get('summary', ''))}</li>"
            )
    items = "".join(rows)
    return f"<h1>{escape(app.title)}</h1><ul>{items}</ul><a href='/openapi.json'>OpenAPI</a>"
