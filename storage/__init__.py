"""SQLite storage: schema migrations and the repository the core's ports are served by."""

from rankbot.storage.repository import Repository

__all__ = ["Repository"]
