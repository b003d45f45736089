"""``python -m service.cli`` is ``onnxplain``."""

import sys

from service.cli import main

sys.exit(main())
