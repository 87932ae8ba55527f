"""Ways in: everything that turns a request from outside into an operation. Slack's HTTP front door (`front`:
body limit, deadlines, signatures spent once), the Bolt listeners (`listeners/`: the slash command, buttons,
shortcuts, the modal, the Home tab's event), the Home tab's publishing (`home`) and the HTTP API for pipelines
(`api`). The `jobstatus-bot` command itself is `bot/cli.py`, above the wiring in `bot/app.py`.

May import: operations, engine, rendering, store, the adapters (backends, slack), support and domain; never
`bot.app` or `bot.cli` (which build these), never `bot.offline`."""
