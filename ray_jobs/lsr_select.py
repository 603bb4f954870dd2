"""Entrypoint for ``ray job submit -- python ray_jobs/lsr_select.py --input ... --output ... --dataset ...``.

The same arguments as ``lsr select``; under ``ray job submit`` RAY_ADDRESS points the pass at the cluster.
"""

import sys

from lsr.cli.main import main

if __name__ == "__main__":
    sys.exit(main(["select", *sys.argv[1:]]))
