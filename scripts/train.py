"""Train tokenizers and the language model: `python scripts/train.py modality=image+audio`."""

import sys

from unimodal.commands.train import main

if __name__ == "__main__":
    sys.exit(main())
