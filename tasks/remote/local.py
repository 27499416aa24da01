"""Where the layout (design.md §3) expects it: the local transport lives with the SSH one."""

from .transport import LocalTransport

__all__ = ["LocalTransport"]
