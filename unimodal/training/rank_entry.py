"""A data-parallel rank started by local rank 0 (``training/launch.py``): the same run, another rank.

``python -m unimodal.training.rank_entry <resolved config.yaml>``, with ``LOCAL_RANK`` and the rendezvous
variables in the environment. It runs ``train`` on rank 0's resolved config and ends if rank 0 dies.
"""

from __future__ import annotations

import sys

from omegaconf import OmegaConf


def main(config_file: str) -> int:
    from unimodal.errors import UnimodalError
    from unimodal.training.launch import watch_parent
    from unimodal.training.run import train

    watch_parent()
    try:
        train(OmegaConf.load(config_file))
    except UnimodalError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
