"""Score a trained run (`run=<dir>`), compare runs (`compare=[a,b]`) or measure a tokenizer (`task=tokenizer`)."""

import sys

from unimodal.commands.evaluate import main

if __name__ == "__main__":
    sys.exit(main())
