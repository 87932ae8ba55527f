"""Rendering: Block Kit built from data, pure functions with no I/O. `messages` (the parent message, thread
replies and ephemeral answers: escaped, bounded) and `views` (the Home tab and the "Watch a job" modal).

May import: the layers below it (the adapters, for a Backend's label and help text; support; domain): what it
renders comes in as arguments, and it calls nothing that does I/O. Never the engine, operations, the ways in,
`bot.app` or `bot.cli`."""
