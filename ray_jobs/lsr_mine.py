"""Entrypoint for ``ray job submit -- python ray_jobs/lsr_mine.py --input ... --output ... --dataset ... --engine ...``.

The same arguments as ``lsr mine``; under ``ray job submit`` RAY_ADDRESS points the job at the cluster.
"""

import sys

from lsr.cli.main import main

if __name__ == "__main__":
    sys.exit(main(["mine", *sys.argv[1:]]))
