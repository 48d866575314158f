"""PostgreSQL: the source of truth (SQLAlchemy 2 models, sessions, and one module of functions per table group).

Functions that read and write rows take a keyword-only ``session`` and never commit: the caller owns the
transaction. They are synchronous; the bot runs them in threads of its own (``db.session.AsyncDatabase``).
"""
