"""Serve a trained run in the browser: `python scripts/demo.py run=<run dir> [port=7860] [host=127.0.0.1]`."""

import sys

from unimodal.commands.demo import main

if __name__ == "__main__":
    sys.exit(main())
