"""Connector runtime: WebSocket sessions, reconnect policy, raw journal, sharding, clocks."""
