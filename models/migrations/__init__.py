"""Alembic migrations of the case store, shipped inside the package (see models.db.upgrade)."""
