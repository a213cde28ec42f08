"""A user's own Python MCP server (FastMCP, stdio) that needs a secret from its env."""

import os

from fastmcp import FastMCP

mcp = FastMCP("notes")


@mcp.tool
def has_token() -> bool:
    """Whether NOTES_TOKEN reached the server (the value itself is never returned)."""
    return bool(os.environ.get("NOTES_TOKEN"))


@mcp.tool
def where() -> str:
    """The server's working directory."""
    return os.getcwd()


if __name__ == "__main__":
    mcp.run(show_banner=False)
