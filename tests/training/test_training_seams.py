"""The training stage's seams: one typed config, the objectives registry, the views registry, run lookup."""

from __future__ import annotations

import pickle

import pytest
import torch

from lsr.cli.main import main
from lsr.core.config import resolve
from lsr.core.errors import InputError
from lsr.training.config import TrainConfig
from lsr.training.objectives import OBJECTIVES, FinetuneObjective, MwfObjective, Objective, make_objective
from tests.helpers.paths import REPO

GIVEN = {"data": "d", "output": "o", "dataset": "cnndm", "max_steps": 3}


def _config(**given) -> TrainConfig:
    return resolve(TrainConfig, {**GIVEN, **given})


# ---- objectives ---------------------------------------------------------------------------------------------------


def test_registry_lists_each_objective_once_by_kind():
    kinds = [cls.model_fields["kind"].default for cls in OBJECTIVES]
    assert kinds == ["mwf", "finetune", "as-es", "logit-kd"] and len(set(kinds)) == len(kinds)
    assert all(issubclass(cls, Objective) for cls in OBJECTIVES)
    with pytest.raises(ValueError, match="unknown objective 'kd'.*mwf, finetune"):
        make_objective("kd")


def test_objective_parameters_are_typed_and_checked():
    assert make_objective("mwf", gamma_ce=0.6, gamma_align=0.4) == MwfObjective(gamma_ce=0.6, gamma_align=0.4)
    with pytest.raises(InputError, match="gamma_ce: input should be a valid number"):
        make_objective("mwf", gamma_ce="0.6", gamma_align=0.4)
    with pytest.raises(InputError, match="gamma_align: field required"):
        make_objective("mwf", gamma_ce=0.6)
    with pytest.raises(InputError, match="unknown setting 'gamma_ce'"):
        make_objective("finetune", gamma_ce=0.6)


def test_mwf_weights_come_from_the_data_set_and_the_flags_not_from_the_model():
    assert _config().objective == MwfObjective(gamma_ce=0.6, gamma_align=0.4)
    assert _config(dataset="xsum").objective == MwfObjective(gamma_ce=0.7, gamma_align=0.3)
    assert _config(model={"gamma_ce": 0.5}).objective.gamma_ce == 0.5
    assert "mwf_gamma_ce" not in _config().mwf_fields()
    assert isinstance(_config(views=[]).objective, FinetuneObjective)
    assert isinstance(_config(objective={"kind": "finetune"}).objective, FinetuneObjective)  # views kept, CE only
    with pytest.raises(InputError, match="mwf objective needs at least one view"):
        _config(views=[], objective={"kind": "mwf"})


def test_mwf_objective_weights_the_models_parts_and_skips_absent_views():
    parts = {"ce": torch.tensor(2.0), "align_ea": torch.tensor(0.5), "align_ter": torch.tensor(0.25)}
    assert MwfObjective(gamma_ce=0.6, gamma_align=0.4).combine(parts).item() == pytest.approx(0.6 * 2 + 0.4 * 0.75)
    assert MwfObjective(gamma_ce=0.6, gamma_align=0.4).combine({"ce": torch.tensor(2.0)}).item() == pytest.approx(1.2)


def test_setup_hook_runs_on_the_worker_side_resources():
    class Recording(FinetuneObjective):
        def setup(self, model, device):
            self._seen = (type(model).__name__, str(device))

    objective = Recording()
    objective.setup(torch.nn.Linear(1, 1), torch.device("cpu"))
    assert objective._seen == ("Linear", "cpu")


# ---- the typed config ---------------------------------------------------------------------------------------------


def test_config_travels_to_workers_by_pickle():
    config = _config(validation_generation={"num_beams": 2})
    again = pickle.loads(pickle.dumps(config))
    assert again == config and again.generation_kwargs()["num_beams"] == 2


def test_a_wrong_type_in_the_yaml_fails_before_ray_with_one_line_naming_the_key(tmp_path, monkeypatch, capsys):
    import lsr.training.trainer as trainer

    def must_not_run(config):
        raise AssertionError("training started despite a bad config")

    monkeypatch.setattr(trainer, "train", must_not_run)
    bad = tmp_path / "bad.yaml"
    bad.write_text('model:\n  warmup_steps: "100"\n')
    args = ["train", "--data", "d", "--output", str(tmp_path / "o"), "--dataset", "cnndm", "--max-steps", "1"]
    assert main([*args, "--config", str(bad)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "model.warmup_steps" in err[0] and "valid integer" in err[0]

    bad.write_text("model:\n  gate_init: yes\n")
    assert main([*args, "--config", str(bad)]) == 2
    assert "model.gate_init" in capsys.readouterr().err


def test_flags_keep_their_names_and_rules(capsys):
    from lsr.cli.main import build_parser

    base = ["train", "--data", "d", "--output", "o", "--dataset", "xsum"]
    args = build_parser().parse_args([*base, "--model", "ckpt", "--views", "ter,ea", "--freeze-gates", "--flat",
                                      "--gpu", "--val-generation", '{"num_beams": 2}', "--epochs", "2",
                                      "--gamma-ce", "0.5"])
    from lsr.core.cli_config import config_from_args

    config = config_from_args(args)
    assert (config.checkpoint, config.views, config.epochs) == ("ckpt", ["ea", "ter"], 2)
    assert config.freeze_gates and config.flat and config.use_gpu
    assert config.mwf_fields()["mwf_gates_trainable"] is False and config.mwf_fields()["mwf_hierarchical"] is False
    assert config.generation_kwargs()["num_beams"] == 2 and config.generation_kwargs()["length_penalty"] == 0.6
    assert config.objective.gamma_ce == 0.5 and config.model.gate_init == 0.01
    with pytest.raises(InputError, match="exactly one of --max-steps and --epochs"):
        config_from_args(build_parser().parse_args([*base, "--epochs", "1", "--max-steps", "2"]))
    with pytest.raises(InputError, match="--val-generation: num_beamz: unknown setting"):
        config_from_args(build_parser().parse_args([*base, "--epochs", "1", "--val-generation", '{"num_beamz": 1}']))
    with pytest.raises(SystemExit):
        build_parser().parse_args([*base, "--epochs", "1", "--views", "ea,aspect"])
    assert "unknown MWF view(s) aspect" in capsys.readouterr().err



def test_accelerator_type_pins_the_gpu_workers_and_needs_gpu():
    """`--accelerator-type A10G` asks every worker for Ray's `accelerator_type:A10G` resource, which only the
    train_gpu nodes of cluster.yaml offer; without --gpu it is refused in one line."""
    import yaml

    from lsr.cli.main import build_parser
    from lsr.core.cli_config import config_from_args
    from lsr.training.trainer import scaling_config

    base = ["train", "--data", "d", "--output", "o", "--dataset", "cnndm", "--epochs", "1", "--workers", "4"]
    config = config_from_args(build_parser().parse_args([*base, "--gpu", "--accelerator-type", "A10G"]))
    worker = scaling_config(config)._resources_per_worker_not_none
    assert worker == {"GPU": 1, "accelerator_type:A10G": 0.001}
    nodes = yaml.safe_load((REPO / "cluster.yaml").read_text())["available_node_types"]
    assert [name for name, node in nodes.items() if "accelerator_type:A10G" in node.get("resources", {})] == [
        "train_gpu"
    ]
    plain = scaling_config(config_from_args(build_parser().parse_args([*base, "--gpu"])))
    assert plain._resources_per_worker_not_none == {"GPU": 1}
    with pytest.raises(InputError, match="--accelerator-type A10G chooses the GPUs of the workers; add --gpu"):
        config_from_args(build_parser().parse_args([*base, "--accelerator-type", "A10G"]))

# ---- views --------------------------------------------------------------------------------------------------------


def test_views_are_named_once_and_every_reader_follows_the_registry():
    from lsr.model import GatedBartConfig
    from lsr.model.views import VIEW_REGISTRY, VIEWS, rationale_text, view
    from lsr.training.data import required_columns
    from lsr.training.gates_plot import gate_series

    assert VIEWS == ("ea", "as", "ter") == tuple(v.name for v in VIEW_REGISTRY)
    assert required_columns(VIEWS) == ["id", "document", "summary", "aspects", "sentences", "triples"]
    assert GatedBartConfig().mwf_views == list(VIEWS)
    assert rationale_text("as", ["One.", "Two."]) == view("as").text(["One.", "Two."]) == "One. Two."
    history = [{"step": 1, "gate/ter/0": 0.1, "gate/ea/0": 0.2, "gate/as/0": 0.3}]
    assert list(gate_series(history)) == list(VIEWS)  # plotted in hierarchy order
    with pytest.raises(InputError, match="unknown view 'aspect'"):
        view("aspect")


# ---- runs ---------------------------------------------------------------------------------------------------------


def test_no_run_is_found_where_none_was_written(tmp_path):
    from lsr.training.checkpoints import find_run

    assert find_run(str(tmp_path), "train") is None
    (tmp_path / "train").mkdir()
    assert find_run(str(tmp_path), "train") is None


def test_every_flag_of_the_hand_written_parser_still_exists():
    from lsr.cli.main import build_parser

    before = """--data --output --dataset --model --views --objective --workers --gpu --max-steps --epochs --resume
        --batch-size --grad-accum --max-grad-norm --lr-scale --warmup-steps --source-max-tokens --target-max-tokens
        --rationale-max-tokens --gate-init --gamma-ce --gamma-align --freeze-gates --flat --freeze-encoder
        --validation --validation-size --val-generation --checkpoint-every --keep-checkpoints --max-failures
        --log-every --storage-path --run-name --seed --find-unused-parameters --config --ray-address""".split()
    train = build_parser()._subparsers._group_actions[0].choices["train"]
    options = {option for action in train._actions for option in action.option_strings}
    assert set(before) <= options, sorted(set(before) - options)


def test_a_starting_checkpoint_in_object_storage_is_refused_in_one_line():
    from lsr.cli.main import build_parser
    from lsr.core.cli_config import config_from_args

    args = ["train", "--data", "d", "--output", "o", "--dataset", "cnndm", "--epochs", "1", "--model", "s3://b/run/model"]
    with pytest.raises(InputError, match=r"--model s3://b/run/model: training starts from a local folder .* --resume"):
        config_from_args(build_parser().parse_args(args))
