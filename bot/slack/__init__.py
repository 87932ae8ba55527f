"""The product's Slack side that is not a listener: the table of Slack's error codes (errors), the sender and
the Socket Mode connection.

May import: bot.metrics (what the bot tells Prometheus of every call), support and domain; never the engine,
operations, rendering, the ways in, `bot.app` or `bot.cli`."""
