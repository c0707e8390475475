"""``python -m lstm_scratch`` is the ``lstm-scratch`` command."""
import sys

from .cli import main

sys.exit(main())
