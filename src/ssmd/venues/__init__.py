"""Venue adapters: one pure module per venue protocol version (see base.py for the contract)."""
