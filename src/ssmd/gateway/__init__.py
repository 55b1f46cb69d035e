"""The gateway: REST history + WebSocket streaming behind API keys, scopes, entitlements,
rate limits and usage metering (DESIGN.md §8). `create_app(settings)` in `app.py`."""
