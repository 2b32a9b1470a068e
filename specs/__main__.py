import sys

from specs.cli import main

sys.exit(main())
