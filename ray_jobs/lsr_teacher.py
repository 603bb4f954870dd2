"""Entrypoint for ``ray job submit -- python ray_jobs/lsr_teacher.py ...``, the arguments of ``lsr teacher``.

(Named so that it shadows no module: a script's folder comes first on ``sys.path``.)
"""

import sys

from lsr.cli.main import main

if __name__ == "__main__":
    sys.exit(main(["teacher", *sys.argv[1:]]))
