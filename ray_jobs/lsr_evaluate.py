"""Entrypoint for ``ray job submit -- python ray_jobs/lsr_evaluate.py ...``.

The same arguments as ``lsr evaluate``; under ``ray job submit`` RAY_ADDRESS points the run at the cluster.
"""

import sys

from lsr.cli.main import main

if __name__ == "__main__":
    sys.exit(main(["evaluate", *sys.argv[1:]]))
