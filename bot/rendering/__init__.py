"""Rendering: Block Kit built from data, pure functions with no I/O. `messages` (the parent message, thread
replies and ephemeral answers: escaped, bounded) and `views` (the Home tab and the "Watch a job" modal).

May import: support and domain only (what they render is data the store and the adapters hand over)."""
