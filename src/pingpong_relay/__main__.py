"""`python -m pingpong_relay` runs the command line."""

import sys

from pingpong_relay.app.cli import main

sys.exit(main())
