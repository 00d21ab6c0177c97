"""`python -m cli`: the `banditrec` command without its console script."""

import sys

from cli import main

sys.exit(main())
