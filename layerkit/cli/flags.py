"""The check-option flags (`--rtol`, `--atol`, `--step`, `--safety`...), generated from
the fields of [`CheckOptions`][layerkit.CheckOptions]: one definition for Python and the
command line.

Each field's validator parses the flag's text and judges the value, so a bad value is refused
with the field's own rule and real bound: `argument --rtol: must be a finite number in [0, 1]
(got '2')`, exit code 2.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import attrs

from layerkit.errors import ConfigError
from layerkit.gradcheck.options import CheckOptions, Integer, Number, OneOf

OPTION_FLAGS: tuple[str, ...] = tuple(
    field.name for field in attrs.fields(CheckOptions) if "help" in field.metadata
)
"""The check options that are also flags: every field with help text (not `progress`)."""


def _field(name: str) -> attrs.Attribute[Any]:
    field: attrs.Attribute[Any] = getattr(attrs.fields(CheckOptions), name)
    return field


def _default_text(value: object) -> str:
    return f"{value:.3g}" if isinstance(value, float) else str(value)


def flag_type(name: str) -> Callable[[str], object]:
    """An argparse `type` for option `name`: parse the text with the field's validator and
    judge the value with it (`ArgumentTypeError` stating the rule and what came)."""
    field = _field(name)
    validator = field.validator
    assert isinstance(validator, Integer | Number | OneOf)

    def parse(text: str) -> object:
        try:
            value = validator.parse(text)
            validator(None, field, value)
        except (ValueError, ConfigError):
            raise argparse.ArgumentTypeError(f"{validator.rule} (got {text!r})") from None
        return value

    parse.__name__ = name
    return parse


def add_option_flags(
    group: argparse._ArgumentGroup | argparse.ArgumentParser,
    names: Sequence[str] = OPTION_FLAGS,
    *,
    help_for: Mapping[str, str] | None = None,
) -> None:
    """Add `--name` for each check option in `names` (default: all of them).

    The flag's default is None (the option keeps [`CheckOptions`][layerkit.CheckOptions]'s
    default, which the help states); `help_for` replaces a field's help text.
    """
    for name in names:
        field = _field(name)
        validator = field.validator
        text = (help_for or {}).get(name, field.metadata["help"])
        default = _default_text(field.default)
        kwargs: dict[str, Any] = {"dest": name, "default": None}
        if isinstance(validator, OneOf):
            kwargs["choices"] = validator.choices
            kwargs["help"] = f"{text} (default {default})"
        else:
            assert isinstance(validator, Integer | Number)
            kwargs["type"] = flag_type(name)
            kwargs["metavar"] = field.metadata["metavar"]
            rule = validator.rule.removeprefix("must be ")
            kwargs["help"] = f"{text}; {rule} (default {default})"
        group.add_argument("--" + name.replace("_", "-"), **kwargs)


def options_from_args(
    args: argparse.Namespace, names: Sequence[str] = OPTION_FLAGS
) -> dict[str, Any]:
    """The check options given on the command line (those left out keep their defaults)."""
    return {name: getattr(args, name) for name in names if getattr(args, name, None) is not None}
