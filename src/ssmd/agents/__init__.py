"""Agent-facing surfaces: the MCP server, its tools, feedback intake and skills."""
