"""The options every check takes, validated once, and the checker's own random streams.

Each option is one attrs field whose validator is also its definition for the command line:
the `layerkit check` flags (`--rtol`, `--step`...) are generated from these fields, their
validators parse and judge the flag's text, and a bad value is refused with the same rule
(naming the real bound) whether it came from Python or from the command line.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal, TypedDict, Unpack

import attrs
import numpy as np

from layerkit.errors import ConfigError
from layerkit.gradcheck.probes import DEFAULT_STEP, Tolerance

Mode = Literal["exact", "sampled", "fast"]
MODES: tuple[str, ...] = ("exact", "sampled", "fast")

Progress = Callable[[int, int], None]
"""A progress callback: `progress(done, total)`, see [`CheckOptions`][layerkit.CheckOptions]."""


def _refuse(attribute: attrs.Attribute[Any], rule: str, value: object) -> ConfigError:
    return ConfigError(f"gradient check: '{attribute.name}' {rule} (got {value!r}).")


@attrs.frozen
class Integer:
    """Validator: an integer (numpy integers too, never a bool) of at least `minimum`."""

    minimum: int

    @property
    def rule(self) -> str:
        """The rule, as error messages state it."""
        kind = "positive" if self.minimum == 1 else "non-negative"
        return (
            f"must be a {kind} integer" if self.minimum in (0, 1) else f"must be >= {self.minimum}"
        )

    def parse(self, text: str) -> int:
        """The value of a command-line text (ValueError if it is not an integer)."""
        return int(text)

    def __call__(self, instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
        if (
            isinstance(value, bool)
            or not isinstance(value, int | np.integer)
            or int(value) < self.minimum
        ):
            raise _refuse(attribute, self.rule, value)


@attrs.frozen
class Number:
    """Validator: a finite real number in `[0, upper]`, or `(0, upper]` if `positive`."""

    upper: float = np.inf
    positive: bool = False

    @property
    def rule(self) -> str:
        """The rule with its real bounds, as error messages state it."""
        low = "(0" if self.positive else "[0"
        high = f"{self.upper:g}]" if np.isfinite(self.upper) else "inf)"
        return f"must be a finite number in {low}, {high}"

    def parse(self, text: str) -> float:
        """The value of a command-line text (ValueError if it is not a number)."""
        return float(text)

    def __call__(self, instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
        ok = isinstance(value, int | float | np.integer | np.floating) and not isinstance(
            value, bool
        )
        number = float(value) if ok else float("nan")  # type: ignore[arg-type]
        low_ok = number > 0 if self.positive else number >= 0
        if not (np.isfinite(number) and number <= self.upper and low_ok):
            raise _refuse(attribute, self.rule, value)


@attrs.frozen
class OneOf:
    """Validator: one of `choices`."""

    choices: tuple[str, ...]

    @property
    def rule(self) -> str:
        """The rule, as error messages state it."""
        return f"must be one of {list(self.choices)}"

    def parse(self, text: str) -> str:
        """The value of a command-line text."""
        return text

    def __call__(self, instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
        if value not in self.choices:
            raise _refuse(attribute, self.rule, value)


def _progress(instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if value is not None and not callable(value):
        raise _refuse(attribute, "must be a callable progress(done, total) or None", value)


def _option(default: Any, validator: Integer | Number | OneOf, help: str, metavar: str) -> Any:
    """A check option: its default, its validator, and its `--flag`'s help and metavar."""
    return attrs.field(
        default=default, validator=validator, metadata={"help": help, "metavar": metavar}
    )


@attrs.frozen
class CheckOptions:
    """Options shared by every check (validated at construction).

    Every field but `progress` is also a flag of `layerkit check` (`--rtol`, `--step`,
    ...), generated from the field: same default, same rule, same error for a bad value.

    Attributes:
        mode: `exact` (every entry), `sampled` (`samples` seeded entries from every
            tensor) or `fast` (`directions` directions over all parameters, the first
            balanced per tensor, the others seeded random, localised per tensor on failure).
        samples: Entries per tensor in sampled mode (and when fast mode localises a failure).
        directions: Directions over all parameters in fast mode.
        seed: Seeds every random choice (salted; the global RNG is never used).
        rtol: With `atol`, the tolerance `atol + rtol * max(|g|, |n|)`, which the numeric
            error bound times `safety` must fit in for a pass.
        atol: The absolute part of the tolerance.
        step: The first relative step (default `eps**(1/3)`).
        safety: The factor on the numeric error bound.
        worst: How many worst entries each tensor reports.
        progress: Called as `progress(done, total)` while the check runs, a few dozen times
            at most (after each block of entries, each direction probe, each layer): `done`
            of `total` units of work, `done == total` last. `total` may grow once (fast
            mode, when a failing direction is localised per tensor). Not part of equality.

    Raises:
        ConfigError: A value out of its range (the message names the option and the bound).
    """

    mode: str = _option(
        "exact",
        OneOf(MODES),
        "exact: every entry; sampled: --samples seeded entries per tensor; fast: --directions "
        "directions over all parameters",
        "MODE",
    )
    samples: int = _option(
        10,
        Integer(1),
        "entries per tensor in sampled mode (and when fast mode localises a failure)",
        "K",
    )
    directions: int = _option(2, Integer(1), "directions over all parameters in fast mode", "K")
    seed: int = _option(0, Integer(0), "seed of the checker's random choices", "N")
    rtol: float = _option(
        1e-7, Number(upper=1.0), "relative tolerance: atol + rtol * max(|g|, |n|)", "R"
    )
    atol: float = _option(0.0, Number(), "absolute tolerance", "A")
    step: float = _option(
        DEFAULT_STEP,
        Number(upper=0.1, positive=True),
        "the first relative finite-difference step",
        "H",
    )
    safety: float = _option(
        3.0, Number(positive=True), "factor on the numeric error bound that must fit in", "S"
    )
    worst: int = _option(5, Integer(1), "worst entries reported per tensor", "N")
    progress: Progress | None = attrs.field(default=None, validator=_progress, eq=False, repr=False)

    @property
    def tolerance(self) -> Tolerance:
        """The numeric tolerance these options describe."""
        return Tolerance(rtol=self.rtol, atol=self.atol, safety=self.safety, step=self.step)

    def report_progress(self, done: int, total: int) -> None:
        """Call `progress(done, total)` if a callback was given."""
        if self.progress is not None:
            self.progress(done, total)


class CheckKwargs(TypedDict, total=False):
    """The keyword options every check takes (see [`CheckOptions`][layerkit.CheckOptions])."""

    mode: str
    samples: int
    directions: int
    seed: int
    rtol: float
    atol: float
    step: float | None
    safety: float
    worst: int
    progress: Progress | None


def make_options(**options: Unpack[CheckKwargs]) -> CheckOptions:
    """[`CheckOptions`][layerkit.CheckOptions] from a check's keyword options (`step=None`:
    the default).

    Raises:
        ConfigError: An unknown option (the message lists the known ones), or a value out of
            its range (the message names the option and the real bound).
    """
    known = CheckKwargs.__annotations__
    unknown = [name for name in options if name not in known]
    if unknown:
        msg = f"gradient check: unknown option(s) {unknown}; the options are {list(known)}."
        raise ConfigError(msg)
    values = dict(options)
    if values.get("step") is None:
        values.pop("step", None)
    return CheckOptions(**values)  # type: ignore[arg-type]


SALT = 0x6C6B_6772_6164
"""Mixed into every seed the checker draws from (projections, directions, samples), so that
`seed=0` never reproduces data the user drew from `default_rng(0)`."""


def checker_rng(seed: int, stream: int = 0) -> np.random.Generator:
    """The checker's own random `stream` for `seed`, salted away from the user's."""
    return np.random.default_rng([SALT, seed, stream])
