"""`python -m modelyard_client` runs the `modelyard` command line."""

import sys

from modelyard_client.cli import main

sys.exit(main())
