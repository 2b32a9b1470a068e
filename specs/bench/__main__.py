import sys

from specs.bench.core import _main_with_errors

sys.exit(_main_with_errors())
