"""NATS: connection, subjects, KV and streams (DESIGN.md §6)."""
