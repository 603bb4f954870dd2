"""Entrypoint for ``ray job submit -- python ray_jobs/lsr_targets.py ...``, the same arguments as ``lsr targets``.

The target pass on its own (``lsr train`` runs it when the vectors are missing). Under ``ray job submit``
RAY_ADDRESS points the run at the cluster.
"""

import sys

from lsr.cli.main import main

if __name__ == "__main__":
    sys.exit(main(["targets", *sys.argv[1:]]))
