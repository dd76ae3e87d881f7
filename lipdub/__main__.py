"""`python -m lipdub` runs the command line tool."""

import sys

from lipdub.apps.cli import main

sys.exit(main())
