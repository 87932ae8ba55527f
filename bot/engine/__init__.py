"""The engine: what runs on its own once a watch exists. `poller` (polls the due jobs and records what
changed), `notifier` (sends what the outbox owes to Slack, in order, paced, once), `replicas` (several
processes on one PostgreSQL) and `digests` (the daily digest per channel).

May import: rendering, store, the adapters (backends, slack), support and domain; never operations, the ways
in, `bot.app` or `bot.cli`."""
