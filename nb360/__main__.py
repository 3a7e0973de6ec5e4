"""`python -m nb360` runs the nb360 command line."""

import sys

from nb360.cli import main

sys.exit(main())
