"""Persistence: the case store on SQLite or PostgreSQL.

- ``settings``: COLLECTFLOW_* settings (database URL, data dir, batch size, policy file, timezone)
- ``db``: engines, Alembic migrations (``migrations/``, shipped in the package), transient errors
- ``tables``: the SQLModel tables and the projection <-> row mapping
- ``store``: ``CaseStore``, append-only hash-chained events with their projections
- ``audit``: ``verify`` (hash chains and replayed projections) and ``timeline`` (a case explained)
- ``service``: use cases, one domain command per unit of work

``models`` imports ``states``, never ``flows``.
"""
