"""Export a trained run for transformers: `python scripts/export.py run=<run dir> out=<folder>`."""

import sys

from unimodal.commands.export import main

if __name__ == "__main__":
    sys.exit(main())
