"""The schema's revisions (Alembic): `env.py` runs them on the connection `bot.store.schema` hands it (locked,
in one transaction), `versions/` holds one module per revision. Configured in code: no alembic.ini."""
