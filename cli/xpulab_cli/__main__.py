"""python -m xpulab_cli (the xpulab command)."""

import sys

from . import main

sys.exit(main())
