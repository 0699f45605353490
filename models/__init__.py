"""Persistence: the case store on SQLite or PostgreSQL. Imports ``states``, never ``flows``.

- ``settings``: COLLECTFLOW_* settings; ``db``: engines, Alembic migrations, transient errors
- ``tables``: the SQLModel tables and the projection <-> row mapping
- ``recorder``: the hash-chained event table (insert and select only)
- ``repository``: case rows (snapshots, projections, quarantine); ``uow``: the unit of work
- ``booking``, ``borrowers``, ``crypto``: loans, the borrowers' encrypted rows, the keys
- ``calendar``, ``reference``, ``queries``: business days, LPR/policies/roster, portfolio reads
- ``store``: ``CaseStore``, one handle composing the parts; ``audit``: verify and rebuild
"""
