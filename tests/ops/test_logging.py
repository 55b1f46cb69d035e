"""JSON logs: one object per line with the fixed fields, extras and exceptions."""

from __future__ import annotations

import io
import json
import logging
from datetime import datetime
from pathlib import Path

from ssmd.ops.logging import setup_logging


def test_json_lines() -> None:
    out = io.StringIO()
    setup_logging("DEBUG", "connector", stream=out)
    setup_logging("DEBUG", "connector", stream=out)  # idempotent: still one handler
    log = logging.getLogger("ssmd.capture.session")
    log.info("connected to %s", "ws://x", extra={"feed": "kr", "shard": 0, "path": Path("/d")})
    log.debug('multi\nline "quoted"')
    try:
        raise OSError(28, "No space left on device")
    except OSError:
        log.exception("journal write failed", extra={"path": "/data/raw/x.zst"})
    lines = out.getvalue().splitlines()
    assert len(lines) == 3
    first, second, third = (json.loads(line) for line in lines)
    assert first["msg"] == "connected to ws://x" and first["level"] == "info"
    assert first["logger"] == "ssmd.capture.session" and first["component"] == "connector"
    assert first["feed"] == "kr" and first["shard"] == 0 and first["path"] == "/d"
    assert first["ts"].endswith("Z") and datetime.fromisoformat(first["ts"].replace("Z", "+00:00"))
    assert set(first) == {"ts", "level", "logger", "msg", "component", "feed", "shard", "path"}
    assert second["msg"] == 'multi\nline "quoted"' and second["level"] == "debug"
    assert third["level"] == "error" and third["path"] == "/data/raw/x.zst"
    assert third["exc"] == "OSError: [Errno 28] No space left on device"
    assert "Traceback" in third["traceback"]
    logging.getLogger().setLevel(logging.WARNING)
    logging.getLogger("x").info("dropped")
    assert len(out.getvalue().splitlines()) == 3
    for handler in list(logging.getLogger().handlers):
        if getattr(handler, "_ssmd_json", False):
            logging.getLogger().removeHandler(handler)
