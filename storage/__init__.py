"""SQLite storage: the schema's migrations, small repositories, and the unit of work that alone
begins and commits their transactions."""

from rankbot.storage.unit_of_work import UnitOfWork

__all__ = ["UnitOfWork"]
