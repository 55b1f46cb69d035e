"""The REST routers, in the order they are mounted. A new REST module defines
`router = APIRouter(...)` and is added here (one line); WebSocket routes go in app.py."""

from __future__ import annotations

from fastapi import APIRouter

from ssmd.gateway import rest_admin, rest_feedback, rest_history, rest_reference

ROUTERS: tuple[APIRouter, ...] = (
    rest_reference.router,
    rest_history.router,
    rest_admin.router,
    rest_feedback.router,
)
