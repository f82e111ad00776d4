"""`python -m functions.devtools`: the tinyllm command line (see functions.devtools.cli)."""

import sys

from functions.devtools.cli import main

sys.exit(main())
