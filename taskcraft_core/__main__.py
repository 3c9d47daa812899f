import sys

from taskcraft_core.cli import main

sys.exit(main())
