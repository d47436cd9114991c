"""``python -m zhiku``: the same as the ``zhiku`` command."""
import sys

from .cli import main

sys.exit(main())
