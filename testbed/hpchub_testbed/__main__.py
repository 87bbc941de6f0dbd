"""`python -m hpchub_testbed`: the same as `hpchub-testbed`."""

import sys

from .cli import main

sys.exit(main())
