"""``python -m wfm_pipeline.sandbox ...``"""

import sys

from wfm_pipeline.sandbox.cli import main

sys.exit(main())
