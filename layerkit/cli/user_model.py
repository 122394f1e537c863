"""A user's own network for the command: `--model module:factory` or
`--model path/to/file.py:factory`, and `--data file.npz` (arrays `x` and `y`).

Every failure (no such module or file, no such attribute, not callable, the import or the
factory raised, not a [`Sequential`][layerkit.Sequential], a data file without `x` or `y`,
the wrong shapes, NaN/Inf) is a `ConfigError` (or another `LayerkitError`) naming the
`--model` or `--data` value: the command prints it on one line and exits with 2, never a
traceback.
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.util
import os
import re
import stat
import sys
import traceback
import zipfile
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import numpy as np

from layerkit._typing import Array
from layerkit._validate import nonfinite_summary
from layerkit.errors import ConfigError, LayerkitError, NonFiniteError, describe_array
from layerkit.sequential import Sequential

_MODULE = re.compile(r"^[A-Za-z_]\w*(\.[A-Za-z_]\w*)*$")


def _raised(error: BaseException) -> str:
    """`ValueError: message (at file.py:12)`: what user code raised, in one line."""
    frames = traceback.extract_tb(error.__traceback__)
    where = f" (at {Path(frames[-1].filename).name}:{frames[-1].lineno})" if frames else ""
    text = " ".join(str(error).split())
    return f"{type(error).__name__}{': ' + text if text else ''}{where}"


@contextlib.contextmanager
def _importable_from(folder: str) -> Iterator[None]:
    """`folder` first on `sys.path` meanwhile, so the user's code imports its neighbours."""
    added = folder not in sys.path
    if added:
        sys.path.insert(0, folder)
    try:
        yield
    finally:
        if added:
            with contextlib.suppress(ValueError):
                sys.path.remove(folder)


def _import_file(path: str, spec: str) -> ModuleType:
    where = f"--model {spec!r}"
    file = Path(path)
    if not file.is_file():
        reason = "it is a directory" if file.is_dir() else "no such file"
        raise ConfigError(f"{where}: cannot read {path!r}: {reason}.")
    name = "layerkit_user_model_" + re.sub(r"\W", "_", file.stem)
    module_spec = importlib.util.spec_from_file_location(name, file)
    if module_spec is None or module_spec.loader is None:
        raise ConfigError(f"{where}: {path!r} is not a Python file (it must end in .py).")
    module = importlib.util.module_from_spec(module_spec)
    sys.modules[name] = module
    try:
        module_spec.loader.exec_module(module)
    except (Exception, SystemExit) as error:
        sys.modules.pop(name, None)
        raise ConfigError(f"{where}: running {path!r} raised {_raised(error)}.") from error
    return module


def _import_module(target: str, spec: str) -> ModuleType:
    where = f"--model {spec!r}"
    if not _MODULE.match(target):
        msg = (
            f"{where}: {target!r} is neither a module name (package.module) nor a .py file; "
            "use module:factory or path/to/file.py:factory."
        )
        raise ConfigError(msg)
    try:
        return importlib.import_module(target)
    except ModuleNotFoundError as error:
        if error.name is not None and target.startswith(error.name):
            msg = (
                f"{where}: no module named {error.name!r} (looked in the current directory "
                "and the installed packages)."
            )
            raise ConfigError(msg) from error
        raise ConfigError(f"{where}: importing {target!r} raised {_raised(error)}.") from error
    except (Exception, SystemExit) as error:
        raise ConfigError(f"{where}: importing {target!r} raised {_raised(error)}.") from error


def load_model(spec: str) -> Sequential:
    """The [`Sequential`][layerkit.Sequential] that `spec`'s factory returns.

    Args:
        spec: `module:factory` (imported with the current directory on the path) or
            `path/to/file.py:factory` (its folder on the path); `factory` may be dotted
            (`Nets.small`). It is called with no arguments.

    Returns:
        The model.

    Raises:
        ConfigError: The spec is malformed, the module or file cannot be imported, the
            attribute is missing or not callable, the factory raised, or it did not return a
            `Sequential` with a loss.
    """
    where = f"--model {spec!r}"
    target, colon, attribute = spec.rpartition(":")
    if not colon or not target or not attribute:
        msg = f"{where}: expected module:factory or path/to/file.py:factory (no ':factory')."
        raise ConfigError(msg)
    is_file = target.endswith(".py") or "/" in target or os.sep in target
    folder = str(Path(target).resolve().parent) if is_file else os.getcwd()
    with _importable_from(folder):
        module = _import_file(target, spec) if is_file else _import_module(target, spec)
        factory: object = module
        for part in attribute.split("."):
            if not hasattr(factory, part):
                public = sorted(n for n in dir(module) if not n.startswith("_"))[:12]
                msg = (
                    f"{where}: {target!r} has no attribute {attribute!r} "
                    f"(it has: {', '.join(public) or 'nothing public'})."
                )
                raise ConfigError(msg)
            factory = getattr(factory, part)
        if not callable(factory):
            msg = f"{where}: {attribute!r} is a {type(factory).__name__}, not a function to call."
            raise ConfigError(msg)
        try:
            model = factory()
        except (Exception, SystemExit) as error:
            raise ConfigError(f"{where}: {attribute}() raised {_raised(error)}.") from error
    if not isinstance(model, Sequential):
        msg = (
            f"{where}: {attribute}() must return a layerkit Sequential, but returned "
            f"{describe_array(model)}."
        )
        raise ConfigError(msg)
    if model.loss is None:
        msg = f"{where}: the Sequential {attribute}() returned has no loss; pass loss=... to it."
        raise ConfigError(msg)
    return model


def _array(archive: np.lib.npyio.NpzFile, key: str, path: str) -> Array:
    where = f"--data {path!r}"
    if key not in archive.files:
        msg = (
            f"{where}: no array {key!r} (it has {archive.files or 'no arrays'}); write the "
            "file with numpy.savez(path, x=inputs, y=targets)."
        )
        raise ConfigError(msg)
    try:
        array = archive[key]
    except (ValueError, OSError, EOFError, zipfile.BadZipFile) as error:
        raise ConfigError(f"{where}: cannot read {key!r}: {error}.") from error
    if array.dtype.kind not in "biuf":
        msg = f"{where}: {key!r} must hold real numbers, but is {describe_array(array)}."
        raise ConfigError(msg)
    problem = nonfinite_summary(array)
    if problem:
        raise NonFiniteError(f"{where}: {key!r} holds {problem}.")
    return array


def load_data(path: str, model: Sequential) -> tuple[Array, Array]:
    """The arrays `x` and `y` of an `.npz` file, validated against `model`.

    The file is opened without pickles. `x` must be what the model takes; `y` what its
    loss takes, with one row per row of `x`.

    Args:
        path: The `.npz` file (the `--data` value).
        model: The model the data is for.

    Returns:
        `x` `(m, in)` and `y` as the file holds them (one row per row of `x`).

    Raises:
        ConfigError: The file cannot be read, is not an `.npz`, lacks `x` or `y`, or
            holds something other than real numbers.
        NonFiniteError: `x` or `y` holds NaN or Inf.
        ShapeError: The shapes do not fit the model (the message names the file).
    """
    where = f"--data {path!r}"
    try:
        mode = os.stat(path).st_mode
    except OSError as error:
        raise ConfigError(f"{where}: cannot read it: {error.strerror or error}.") from error
    if not stat.S_ISREG(mode):
        raise ConfigError(f"{where}: it is not a regular file.")
    try:
        loaded = np.load(path, allow_pickle=False)
    except (ValueError, OSError, EOFError, zipfile.BadZipFile) as error:
        raise ConfigError(f"{where}: cannot read it as .npz: {error}.") from error
    if not isinstance(loaded, np.lib.npyio.NpzFile):
        raise ConfigError(f"{where}: it is not an .npz file (numpy.savez writes one).")
    with loaded as archive:
        x, y = _array(archive, "x", path), _array(archive, "y", path)
    try:
        inputs = model.check_input(x)
        y_rows = y.shape[0] if y.ndim else None
        if y_rows != inputs.shape[0]:
            msg = (
                f"'y' must have one row per row of 'x' ({inputs.shape[0]}), but has shape "
                f"{y.shape}."
            )
            raise ConfigError(msg)
        model.check_targets(y, inputs.shape[0])
    except LayerkitError as error:
        raise type(error)(f"{where}: {error}") from error
    return x, y
