"""Tokenize data splits into token shards once: `python scripts/make_shards.py modality=image+audio`."""

import sys

from unimodal.commands.make_shards import main

if __name__ == "__main__":
    sys.exit(main())
