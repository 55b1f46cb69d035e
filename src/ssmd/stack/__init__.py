"""Embedded servers for `ssmd up` and the tests (DESIGN.md §9).

- `state`: the stack.json state file other commands read to find the servers;
- `process`, `server`, `ports`, `binaries`, `users`, `aio`: the shared machinery;
- `nats`, `postgres`, `s3`, `temporal`: one module per server;
- `local`: LocalStack (`ssmd up`) and stop_stack (`ssmd down`);
- `selfcheck`: `python -m ssmd.stack.selfcheck` prints each server's start-up time.

Nothing is imported here so `from ssmd.stack.state import …` stays cheap.
"""
