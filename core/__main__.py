"""`python -m core`: the tinyllm command line (see core.cli)."""

import sys

from core.cli import main

sys.exit(main())
