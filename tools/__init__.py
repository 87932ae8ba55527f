"""Developer tools that are no part of the bot (the mutation-testing command: `python -m tools.mutants`)."""
