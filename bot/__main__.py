"""`python -m bot` is `jobstatus-bot`."""

import sys

from bot.cli import main

sys.exit(main())
