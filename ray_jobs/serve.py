"""Ray Serve entrypoint: ``python ray_jobs/serve.py --model DIR ...`` (the arguments of ``lsr serve``), or an
importable application builder for Serve's own CLI, from the repository root::

    serve run ray_jobs.serve:app model=RUN/model dataset=cnndm
    serve deploy ray_jobs/serve_config.yaml      # import_path lsr.serving.app:build_app, the same builder

Nothing runs at import; ``app`` is :func:`lsr.serving.app.build_app`.
"""

import sys
from pathlib import Path

if __name__ == "__main__" and sys.path and Path(sys.path[0]).resolve() == Path(__file__).resolve().parent:
    # Run as a script, this folder comes first on sys.path, and its sibling entrypoints would shadow standard
    # modules of the same name (select.py hides `select` from asyncio); the entrypoint needs nothing from it.
    sys.path.pop(0)

from lsr.serving.app import build_app  # noqa: E402

app = build_app

if __name__ == "__main__":
    from lsr.cli import main

    sys.exit(main(["serve", *sys.argv[1:]]))
