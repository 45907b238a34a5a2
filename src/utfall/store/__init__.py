"""Operational store: SQLAlchemy 2.x models, Alembic migrations, bulk loading."""
