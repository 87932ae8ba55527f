"""One module per schema revision, oldest first: 0001 is jobstatus 0.1.0's schema as it made it, the
revisions after it the changes since (Alembic skips this file)."""
