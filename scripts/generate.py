"""Generate from a trained run: `python scripts/generate.py run=<dir> prompt="a red circle" output=image`."""

import sys

from unimodal.commands.generate import main

if __name__ == "__main__":
    sys.exit(main())
