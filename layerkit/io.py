"""Saving and loading parameters: named arrays in a `.npz` file, with the architecture.

The file is an ordinary `.npz` (`numpy.load` opens it): one array per parameter under its
model name (`W1`, `b1`, ...) and a `__layerkit__` entry, a JSON string describing the
architecture (layer classes and names, tensor names, shapes and dtypes).

A parameter file is untrusted input: [`load_params`][layerkit.load_params] reads only what
the model needs, bounded, without pickles or NaN/Inf, and writes nothing into the model
unless everything matched and was read; every fault of the file is a
[`ParamFileError`][layerkit.errors.ParamFileError] naming the file and the member.
"""

from __future__ import annotations

import json
import os
import stat
import tempfile
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from layerkit._npz_reader import (
    CHUNK_BYTES,
    FORMAT,
    HEADER_MAX_BYTES,
    META_KEY,
    META_MAX_BYTES,
    VERSION,
    model_layers,
    read_params,
    shown_path,
)
from layerkit._typing import Array
from layerkit._validate import nonfinite_summary
from layerkit.errors import ConfigError, NonFiniteError, ParamFileError
from layerkit.layers.base import Layer
from layerkit.params import check_writable
from layerkit.sequential import Sequential

__all__ = [
    "CHUNK_BYTES",
    "FORMAT",
    "HEADER_MAX_BYTES",
    "META_KEY",
    "META_MAX_BYTES",
    "VERSION",
    "PathLike",
    "architecture",
    "load_params",
    "save_params",
]

PathLike = str | os.PathLike[str]


def _path_text(path: object, where: str) -> str:
    """`path` as a string, refusing what is not a file path (None, open file objects)."""
    if isinstance(path, str | bytes | os.PathLike):
        text = os.fsdecode(os.fspath(path))
        if text and "\0" not in text:
            return text
    msg = (
        f"{where}: 'path' must be a file path (str or os.PathLike), got "
        f"{type(path).__name__} {path!r}"[:200]
    )
    raise ParamFileError(msg + ".")


def architecture(model: Sequential | Layer) -> dict[str, Any]:
    """The JSON-ready description stored with the parameters: format, layers and tensors."""
    layers = model_layers(model, "architecture")
    return {
        "format": FORMAT,
        "version": VERSION,
        "layers": [{"class": type(layer).__name__, "name": layer.name} for layer in layers],
        "tensors": [
            {"name": name, "shape": list(array.shape), "dtype": array.dtype.str}
            for name, array in model.params().items()
        ],
    }


def _umask() -> int:
    """The process's umask, read without changing it where the system says it (Linux)."""
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def save_params(model: Sequential | Layer, path: PathLike) -> Path:
    """Write `model`'s parameters and architecture to the `.npz` file `path` exactly.

    Atomic: written to a hidden `.<name>.<random>.tmp` beside the target (a symlink's target),
    flushed, then moved over `path`, so readers never see half a file; the temporary is removed
    on any exception (a killed process may leave it; it is safe to delete). An existing file
    keeps its permission bits, a new one gets `0o666` minus the umask; special files are
    refused. No suffix is added.

    Args:
        model: A [`Sequential`][layerkit.Sequential] or a single [`Layer`][layerkit.Layer].
        path: Where to write.

    Returns:
        `path` as a `pathlib.Path`.

    Raises:
        ConfigError: `model` is not a model, or a parameter is named `__layerkit__`.
        NonFiniteError: A parameter holds NaN or Inf (`load_params` would refuse the file).
        ParamFileError: `path` is not a path, or the file cannot be written.
    """
    meta = json.dumps(architecture(model))
    params = model.params()
    if META_KEY in params:
        msg = f"save_params: a parameter may not be named {META_KEY!r} (reserved for the spec)."
        raise ConfigError(msg)
    for name, values in params.items():
        problem = nonfinite_summary(np.asarray(values))
        if problem:
            msg = (
                f"save_params: the model's {name} holds {problem}; load_params refuses "
                "non-finite parameters, so the file was not written."
            )
            raise NonFiniteError(msg)
    text = _path_text(path, "save_params")
    where = f"save_params: cannot write {shown_path(text)}"
    target = Path(os.path.realpath(text))  # through a symlink: the link stays, its file changes
    try:
        status = target.stat()
    except FileNotFoundError:
        mode = 0o666 & ~_umask()
    except OSError as exc:
        raise ParamFileError(f"{where}: {exc.strerror or exc}.") from exc
    else:
        if not stat.S_ISREG(status.st_mode):
            kind = "a directory" if stat.S_ISDIR(status.st_mode) else "not a regular file"
            raise ParamFileError(f"{where}: it is {kind}.")
        mode = stat.S_IMODE(status.st_mode)
    entries: dict[str, Array | np.ndarray[Any, np.dtype[np.str_]]] = {
        **params,
        META_KEY: np.array(meta),
    }
    try:
        handle, temporary = tempfile.mkstemp(
            prefix=f".{target.name}.", suffix=".tmp", dir=target.parent
        )
    except OSError as exc:
        raise ParamFileError(f"{where}: {exc.strerror or exc}.") from exc
    try:
        os.fchmod(handle, mode)
        with os.fdopen(handle, "wb") as stream:
            with zipfile.ZipFile(stream, "w") as archive:
                for key, array in entries.items():
                    with archive.open(f"{key}.npy", "w", force_zip64=True) as member:
                        np.lib.format.write_array(member, np.asarray(array), allow_pickle=False)
            stream.flush()
            os.fsync(stream.fileno())
        os.replace(temporary, target)
    except BaseException as exc:
        Path(temporary).unlink(missing_ok=True)
        if isinstance(exc, OSError):
            raise ParamFileError(f"{where}: {exc.strerror or exc}.") from exc
        raise
    return Path(text)


def load_params(model: Sequential | Layer, path: PathLike) -> None:
    """Load parameters saved by [`save_params`][layerkit.save_params] into `model`, exactly.

    The file must come from the same architecture: the same layer classes in order, tensor
    names and shapes, and dtypes that convert to the model's without loss. It is read as
    untrusted input (headers checked before data, bounded, no pickles, no NaN/Inf); the model
    is rebound to new arrays only after everything was read, so on any error it is untouched.

    Args:
        model: A [`Sequential`][layerkit.Sequential] or a single [`Layer`][layerkit.Layer].
        path: The `.npz` file.

    Raises:
        ParamFileError: The file cannot be read, is not layerkit's, is damaged or crafted, holds
            NaN/Inf, or was saved from another architecture (the message names the file, the
            member and what differs).
        ConfigError: `model` is not a model, or one of its arrays cannot be written.
    """
    model_layers(model, "load_params")
    check_writable(model.params(), owner="load_params")
    label = _path_text(path, "load_params")
    where = f"load_params: cannot open {shown_path(label)}"
    try:  # non-blocking: a FIFO must not hang the open; only regular files are read
        descriptor = os.open(label, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    except OSError as exc:
        reason = "it is a directory" if isinstance(exc, IsADirectoryError) else exc.strerror
        raise ParamFileError(f"{where}: {reason or exc}.") from exc
    if not stat.S_ISREG(os.fstat(descriptor).st_mode):
        os.close(descriptor)
        kind = "a directory" if os.path.isdir(label) else "not a regular file"
        raise ParamFileError(f"{where}: it is {kind}.")
    with os.fdopen(descriptor, "rb") as stream:
        arrays = read_params(model, label, stream)
    model.set_params(arrays)  # rebinds: a cache holding the old arrays stays valid
