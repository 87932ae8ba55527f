"""Operations: what users ask of the bot, decided once whichever way it comes in. `watching` (watch, status,
stop, rewatch, cancel, list), `permissions` (who may see and do what, at every action) and `quotas` (how many
watches one user, API token or channel may have and start).

May import: engine, rendering, store, the adapters (backends, slack), support and domain; never the ways in
(bot.inbound), `bot.app` or `bot.cli`."""
