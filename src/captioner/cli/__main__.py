"""`python -m captioner.cli`: the `captioner` command."""

import sys

from captioner.cli.main import main

sys.exit(main())
