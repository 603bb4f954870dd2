"""Ray Serve entrypoint: ``python ray_jobs/lsr_serve.py --model DIR ...`` (the arguments of ``lsr serve``), or an
importable application builder for Serve's own CLI, from the repository root::

    serve run ray_jobs.lsr_serve:app model=RUN/model dataset=cnndm
    serve deploy ray_jobs/serve_config.yaml      # import_path lsr.serving.app:build_app, the same builder

Nothing runs at import; ``app`` is :func:`lsr.serving.app.build_app`.
"""

import sys

from lsr.serving.app import build_app

app = build_app

if __name__ == "__main__":
    from lsr.cli.main import main

    sys.exit(main(["serve", *sys.argv[1:]]))
