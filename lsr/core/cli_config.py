"""Command-line flags generated from a stage's config model, so that every option is declared once.

Why argparse generated from the pydantic model, and not pydantic-settings' CLI, jsonargparse or tyro: the
stages layer the paper's per-data-set defaults *under* the user's YAML and flags, with the data set itself
chosen by a flag (:func:`lsr.core.config.resolve`); those libraries own the whole parse and would need custom
sources for that order. Here argparse only collects what the user typed (every flag defaults to
``argparse.SUPPRESS``), and the model alone decides types, bounds, defaults and errors.

A field becomes ``--field-name``; the fields of an embedded section (``selection.threshold``) and of a
discriminated union of models (``engine``: one flag picks the member, its fields follow) become flags of their
own leaf names. :class:`Flag` in a field's ``Annotated`` metadata renames a flag, parses it (``"1,4"`` -> a
pair), or keeps a field off the command line.
"""

from __future__ import annotations

import argparse
import json
import types
import typing
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal, Union

from pydantic import BaseModel
from pydantic.fields import FieldInfo

from lsr.core.config import StageConfig, resolve
from lsr.core.errors import InputError

_FLAGS_KEY = "_lsr_flag_names"
_CONFIG_KEY = "_lsr_config_cls"


@dataclass(frozen=True)
class Flag:
    """Command-line details of a field: ``name`` (e.g. ``"--model"``), ``parse`` (text -> value),
    ``metavar``, ``cli=False`` to keep it in YAML/code only, ``action="append"`` for repeated flags,
    ``positional=True`` for a bare argument (``lsr data stats PATH``); on an embedded section, ``fields`` names
    the only section fields that become flags (the rest stay YAML-only), and ``parse`` makes the whole section
    one flag (``--autoscale 1,4`` -> ``{"min_replicas": 1, "max_replicas": 4}``)."""

    name: str | None = None
    parse: Callable[[str], Any] | None = None
    metavar: str | None = None
    cli: bool = True
    action: str | None = None
    fields: tuple[str, ...] | None = None
    positional: bool = False


def comma_list(text: str) -> list[str]:
    """``"a, b,c"`` -> ``["a", "b", "c"]`` (empty items dropped)."""
    return [item.strip() for item in text.split(",") if item.strip()]


def json_object(text: str) -> dict[str, Any]:
    try:
        value = json.loads(text)
    except json.JSONDecodeError as err:
        raise argparse.ArgumentTypeError(f"not a JSON object ({err.msg})") from None
    if not isinstance(value, dict):
        raise argparse.ArgumentTypeError("give a JSON object, e.g. '{\"num_beams\": 2}'")
    return value


def _flag_of(info: FieldInfo) -> Flag:
    return next((m for m in info.metadata if isinstance(m, Flag)), Flag())


def _strip_optional(annotation: Any) -> Any:
    if typing.get_origin(annotation) in (Union, types.UnionType):
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        if len(args) == 1:
            return args[0]
    return annotation


def _model_union(annotation: Any) -> list[type[BaseModel]] | None:
    """The members of a union of models (a discriminated union), else None."""
    annotation = _strip_optional(annotation)
    if typing.get_origin(annotation) is typing.Annotated:
        annotation = typing.get_args(annotation)[0]
    if typing.get_origin(annotation) in (Union, types.UnionType):
        members = typing.get_args(annotation)
        if all(isinstance(m, type) and issubclass(m, BaseModel) for m in members):
            return list(members)
    return None


def _is_model(annotation: Any) -> bool:
    annotation = _strip_optional(annotation)
    return isinstance(annotation, type) and issubclass(annotation, BaseModel)


def _argument_kwargs(info: FieldInfo, flag: Flag, name: str, *, show_default: bool) -> dict[str, Any]:
    """argparse keyword arguments for a leaf field, from its type."""
    annotation = _strip_optional(info.annotation)
    kwargs: dict[str, Any] = {"default": argparse.SUPPRESS, "help": _help(info, show_default)}
    kwargs["metavar"] = flag.metavar or name.upper()
    if flag.action == "append":
        kwargs.update(action="append", type=flag.parse or str)
        return kwargs
    if flag.parse is not None:
        kwargs["type"] = _user_errors_as_argument_errors(flag.parse)
        return kwargs
    origin = typing.get_origin(annotation)
    if annotation is bool:
        kwargs["action"] = argparse.BooleanOptionalAction
        del kwargs["metavar"]
    elif origin is Literal:
        choices = typing.get_args(annotation)
        kwargs.update(choices=choices, type=type(choices[0]))
        del kwargs["metavar"]
    elif annotation in (int, float, str):
        kwargs["type"] = annotation
    elif origin is list:
        kwargs["type"] = comma_list
    elif origin is dict:
        kwargs["type"] = json_object
    else:
        kwargs["type"] = str
    return kwargs


def _user_errors_as_argument_errors(parse: Callable[[str], Any]) -> Callable[[str], Any]:
    """``parse`` with its :class:`InputError` turned into argparse's own one-line usage error."""

    def parse_flag(text: str) -> Any:
        try:
            return parse(text)
        except InputError as err:
            raise argparse.ArgumentTypeError(str(err)) from None

    parse_flag.__name__ = getattr(parse, "__name__", "value")
    return parse_flag


def _help(info: FieldInfo, show_default: bool) -> str:
    text = info.description or ""
    if show_default and not info.is_required() and info.default not in (None, argparse.SUPPRESS, False, [], {}):
        text += f" (default: {info.default})"
    return text.replace("%", "%%")


def add_config_arguments(parser: argparse.ArgumentParser, config_cls: type[StageConfig]) -> None:
    """Add a flag for every option of ``config_cls`` (and ``--config`` when it embeds data-set sections)."""
    own = [n for n in config_cls.model_fields if n not in StageConfig.model_fields]
    sections = config_cls.preset_sections()

    def title(name: str) -> str:
        return f"{name} settings" + (" (default: the data set's paper values)" if name in sections else "")

    # the stage's own options first, the shared ones last
    flag_names = _add_fields(parser, config_cls, own + list(StageConfig.model_fields), title)
    if sections:
        parser.add_argument(
            "--config",
            default=None,
            metavar="FILE.yaml",
            help=f"a YAML file overriding the paper's defaults, nested by section ({', '.join(sections)})",
        )
    parser.set_defaults(**{_FLAGS_KEY: flag_names, _CONFIG_KEY: config_cls})


def add_model_arguments(parser: argparse.ArgumentParser, model_cls: type[BaseModel]) -> None:
    """Flags for a config model that is not a stage's (no data-set preset under it: ``lsr serve``'s): the same
    rules as :func:`add_config_arguments`; :func:`given_values` reads what the user typed."""
    flag_names = _add_fields(parser, model_cls, list(model_cls.model_fields), lambda name: f"{name} settings")
    parser.set_defaults(**{_FLAGS_KEY: flag_names})


def _add_fields(parser: argparse.ArgumentParser, model_cls: type[BaseModel], names: list[str],
                section_title: Callable[[str], str]) -> dict[str, str]:
    """Add the flags of ``names`` (fields of ``model_cls``); returns each dotted key's flag, for error messages."""
    flag_names: dict[str, str] = {}
    seen: set[str] = set()

    def add_leaf(group, key: str, name: str, info: FieldInfo) -> None:
        flag = _flag_of(info)
        if not flag.cli:
            return
        option = flag.name or "--" + name.replace("_", "-")
        if flag.positional:
            option = flag.metavar or name.upper()
        flag_names[key] = option
        if option in seen:  # a field shared by several union members: one flag fills whichever is chosen
            return
        seen.add(option)
        kwargs = _argument_kwargs(info, flag, name, show_default="." not in key)
        if flag.positional:  # argparse names a positional by its dest; required unless the field has a default
            kwargs["metavar"] = option
            kwargs["nargs"] = None if info.is_required() else "?"
            group.add_argument(key, **kwargs)
            return
        if info.is_required() and "." not in key:
            kwargs["required"] = True
        group.add_argument(option, dest=key, **kwargs)

    for name in names:
        info = model_cls.model_fields[name]
        flag = _flag_of(info)
        members = _model_union(info.annotation)
        if members is not None:
            _add_union(parser, name, info, members, add_leaf)
        elif _is_model(info.annotation) and flag.parse is None:  # a section (one parsed flag fills it whole)
            if not flag.cli:  # a section kept to the preset and YAML (and code)
                continue
            section = parser.add_argument_group(section_title(name))
            for sub_name, sub_info in _strip_optional(info.annotation).model_fields.items():
                if flag.fields is None or sub_name in flag.fields:
                    add_leaf(section, f"{name}.{sub_name}", sub_name, sub_info)
        else:
            add_leaf(parser, name, name, info)
    return flag_names


def _add_union(parser, name: str, info: FieldInfo, members: list[type[BaseModel]], add_leaf) -> None:
    """``--NAME KIND`` picks the member by its ``kind`` literal; every member's fields become flags."""
    kinds = [typing.get_args(m.model_fields["kind"].annotation)[0] for m in members]
    parser.add_argument(
        "--" + name.replace("_", "-"),
        dest=f"{name}.kind",
        choices=kinds,
        default=argparse.SUPPRESS,
        required=info.is_required(),
        help=info.description,
    )
    for member, kind in zip(members, kinds, strict=True):
        group = parser.add_argument_group(f"{name} {kind}")
        for sub_name, sub_info in member.model_fields.items():
            if sub_name != "kind":
                add_leaf(group, f"{name}.{sub_name}", sub_name, sub_info)


def given_values(args: argparse.Namespace) -> dict[str, Any]:
    """What the user typed, nested by the dotted destinations (``{"selection": {"threshold": 0.8}}``)."""
    nested: dict[str, Any] = {}
    for key, value in vars(args).items():
        if key.startswith("_") or key in ("config", "command", "verbose"):
            continue
        *parents, leaf = key.split(".")
        target = nested
        for part in parents:
            target = target.setdefault(part, {})
        target[leaf] = value
    return nested


def config_from_args(args: argparse.Namespace) -> Any:
    """The validated stage config of a parsed command line; one :class:`InputError` line if anything is wrong."""
    config_cls = getattr(args, _CONFIG_KEY, None)
    if config_cls is None:
        raise InputError("internal: this command declares no config model")
    return resolve(
        config_cls, given_values(args), yaml_path=getattr(args, "config", None), flag_names=getattr(args, _FLAGS_KEY)
    )
