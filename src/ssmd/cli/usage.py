"""`ssmd usage report --month YYYY-MM`: metered usage per client (from the gateways)."""

from __future__ import annotations

import typer

from ssmd.cli.output import INVALID, CliError, JsonOpt, emit
from ssmd.cli.pg import PgUrlOpt, meta_session

app = typer.Typer(help="Usage metered by the gateway (messages, bytes, display class).",
                  no_args_is_help=True)  # fmt: skip


@app.command("report")
def report(
    month: str = typer.Option(..., "--month", "-m", help="Month, YYYY-MM."),
    env: str | None = typer.Option(None, "--env", "-e", help="Only this environment."),
    as_json: bool = JsonOpt,
    pg_url: str | None = PgUrlOpt,
) -> None:
    """Per client, class (display / non-display / trading) and kind: requests, messages,
    bytes and active days over one month, with per-client totals."""
    from ssmd.gateway.metering import month_range
    from ssmd.gateway.metering import report as usage_report

    try:
        month_range(month)
    except ValueError as exc:
        raise CliError(f"--month: {exc}", INVALID) from None
    with meta_session(pg_url) as conn:
        rows = usage_report(conn, month, env)
    totals: dict[tuple[str, str], dict[str, int]] = {}
    for r in rows:
        t = totals.setdefault((r["env"], r["client"]), {"requests": 0, "messages": 0, "bytes": 0})
        for k in t:
            t[k] += r[k]
    doc = {
        "month": month,
        "env": env,
        "rows": rows,
        "clients": [{"env": e, "client": c, **t} for (e, c), t in sorted(totals.items())],
    }
    table = [[r["env"], r["client"], r["class"], r["kind"], r["requests"], r["messages"],
              r["bytes"], r["days"]] for r in rows]  # fmt: skip
    cols = ["env", "client", "class", "kind", "requests", "messages", "bytes", "days"]
    emit(as_json, doc, f"usage {month}", cols, table)
