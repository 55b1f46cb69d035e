"""Five-field cron expressions, checked without running them (Temporal runs them)."""

from __future__ import annotations

import re

_FIELDS = (
    ("minute", 0, 59, {}),
    ("hour", 0, 23, {}),
    ("day-of-month", 1, 31, {}),
    (
        "month",
        1,
        12,
        {
            m: i + 1
            for i, m in enumerate(
                ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"]
            )
        },
    ),
    (
        "day-of-week",
        0,
        7,
        {d: i for i, d in enumerate(["sun", "mon", "tue", "wed", "thu", "fri", "sat"])},
    ),
)
_MACROS = ("@yearly", "@annually", "@monthly", "@weekly", "@daily", "@midnight", "@hourly")
_PART = re.compile(r"^(\*|[a-z0-9]+(-[a-z0-9]+)?)(/(\d+))?$")


def check_cron(expr: str) -> str | None:
    """None if valid, else what is wrong."""
    text = expr.strip().lower()
    if text in _MACROS:
        return None
    fields = text.split()
    if len(fields) != 5:
        return f"cron {expr!r} has {len(fields)} fields, expected 5"
    for value, (name, lo, hi, names) in zip(fields, _FIELDS, strict=True):
        for part in value.split(","):
            match = _PART.match(part)
            if not match:
                return f"cron {name} {part!r} is not valid"
            if match.group(4) is not None and int(match.group(4)) == 0:
                return f"cron {name} step must be positive"
            if match.group(1) == "*":
                continue
            bounds = match.group(1).split("-")
            nums = []
            for b in bounds:
                n = names.get(b, int(b) if b.isdigit() else None)
                if n is None or not lo <= n <= hi:
                    return f"cron {name} {b!r} is out of range {lo}-{hi}"
                nums.append(n)
            if len(nums) == 2 and nums[0] > nums[1]:
                return f"cron {name} range {match.group(1)!r} is backwards"
    return None
