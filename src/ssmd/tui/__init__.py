"""`ssmd tui`: the terminal admin UI (Textual).

`snapshot` gathers one immutable `Snapshot` per refresh (KV heartbeats, Postgres, the
data dir) on a worker thread; `format` turns it into text; `views/` are the screens and
`app` wires keys, refresh and the key actions. See docs/tui.md.
"""
