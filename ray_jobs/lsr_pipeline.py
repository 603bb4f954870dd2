"""The paper's Table 2 on a cluster: ``python ray_jobs/lsr_pipeline.py --dataset cnndm --train-input s3://... ...``.

Runs on the user's machine (not as a job itself): prints ``lsr plan``'s estimate of mining, then submits mine,
select, train and evaluate as separate ``ray job submit`` jobs to ``--address`` (or RAY_ADDRESS), each after the
previous one succeeded; ``--dry-run`` prints the exact ``ray job submit`` lines instead. Running it again skips
the stages that succeeded and resumes the one that failed. The logic is :mod:`lsr.cli.pipeline_recipe`.
"""

import argparse
import os
import sys


def main(argv=None) -> int:
    from lsr.cli.main import main as lsr_main
    from lsr.cli.pipeline_recipe import (
        RecipeConfig,
        StageFailed,
        build_jobs,
        plan_arguments,
        run_recipe,
        submit_command,
    )
    from lsr.core.cli_config import add_config_arguments, config_from_args
    from lsr.core.errors import LsrError

    parser = argparse.ArgumentParser(prog="ray_jobs/lsr_pipeline.py", description=__doc__.split("\n\n")[0])
    add_config_arguments(parser, RecipeConfig)
    args = parser.parse_args(argv)
    try:
        config = config_from_args(args)
    except LsrError as err:
        print(f"pipeline: error: {err}", file=sys.stderr)
        return 2
    if config.plan and lsr_main(plan_arguments(config)) != 0:
        return 2
    if config.dry_run:
        print("# the jobs, in order; each line waits for its job: run the next only after it SUCCEEDED")
        for job in build_jobs(config):
            print(submit_command(job, config))
        return 0
    address = config.address or os.environ.get("RAY_ADDRESS")
    if not address:
        print("pipeline: error: give --address http://HEAD:8265 or set RAY_ADDRESS", file=sys.stderr)
        return 2
    from ray.exceptions import AuthenticationError
    from ray.job_submission import JobSubmissionClient

    try:
        run_recipe(config, JobSubmissionClient(address))
    except StageFailed as err:
        print(f"pipeline: {err}", file=sys.stderr)
        return 1
    except AuthenticationError:
        print("pipeline: error: the cluster uses token authentication: export RAY_AUTH_MODE=token and give its "
              "token in ~/.ray/auth_token, RAY_AUTH_TOKEN_PATH or RAY_AUTH_TOKEN", file=sys.stderr)
        return 2
    except ConnectionError as err:
        print(f"pipeline: error: cannot reach the cluster at {address} ({err})", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
