"""Alembic migrations, run programmatically by `tracking_service.migrate`."""
