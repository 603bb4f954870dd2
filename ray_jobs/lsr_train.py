"""Entrypoint for ``ray job submit -- python ray_jobs/lsr_train.py ...``, with the same arguments as ``lsr train``.

Under ``ray job submit`` RAY_ADDRESS points the run at the cluster.
"""

import sys

from lsr.cli.main import main

if __name__ == "__main__":
    sys.exit(main(["train", *sys.argv[1:]]))
