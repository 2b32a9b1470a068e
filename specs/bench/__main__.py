import sys

from specs.bench.cli import main_with_errors

sys.exit(main_with_errors())
