"""Saving and loading parameters: named arrays in a ``.npz`` file, with the architecture.

The file is an ordinary ``.npz`` (``numpy.load`` opens it): one array per parameter under its
model name (``W1``, ``b1``, ...) and a ``__layerkit__`` entry, a JSON string describing the
architecture (layer classes and names, tensor names, shapes and dtypes). Loading checks that
description against the model first and writes nothing unless everything matches; no pickled
data is ever read (``allow_pickle=False``).
"""

from __future__ import annotations

import json
import os
import tempfile
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from layerkit._typing import Array
from layerkit.errors import ConfigError, ParamFileError
from layerkit.layers.base import Layer
from layerkit.sequential import Sequential

META_KEY = "__layerkit__"
"""The ``.npz`` entry holding the architecture, as a JSON string."""

FORMAT = "layerkit-params"
VERSION = 1

PathLike = str | os.PathLike[str]


def _layers(model: Sequential | Layer, where: str) -> tuple[Layer, ...]:
    if isinstance(model, Sequential):
        return model.layers
    if isinstance(model, Layer):
        return (model,)
    msg = f"{where}: 'model' must be a Sequential or a Layer, got {type(model).__name__}."
    raise ConfigError(msg)


def architecture(model: Sequential | Layer) -> dict[str, Any]:
    """The JSON-ready description stored with the parameters: format, layers and tensors."""
    layers = _layers(model, "architecture")
    return {
        "format": FORMAT,
        "version": VERSION,
        "layers": [{"class": type(layer).__name__, "name": layer.name} for layer in layers],
        "tensors": [
            {"name": name, "shape": list(array.shape), "dtype": array.dtype.str}
            for name, array in model.params().items()
        ],
    }


def save_params(model: Sequential | Layer, path: PathLike) -> Path:
    """Write ``model``'s parameters and architecture to the ``.npz`` file ``path`` exactly.

    The file is written under a temporary name and then moved over ``path``, so an existing
    file is never left half-written. No suffix is added to ``path``.

    **Returns:** ``path`` as a :class:`~pathlib.Path`.
    """
    params = model.params() if isinstance(model, Sequential | Layer) else {}
    meta = json.dumps(architecture(model))
    if META_KEY in params:
        msg = f"save_params: a parameter may not be named {META_KEY!r} (reserved for the spec)."
        raise ConfigError(msg)
    target = Path(path)
    entries: dict[str, Array | np.ndarray[Any, np.dtype[np.str_]]] = {
        **params,
        META_KEY: np.array(meta),
    }
    handle, temporary = tempfile.mkstemp(prefix=f".{target.name}.", dir=target.parent)
    try:
        with os.fdopen(handle, "wb") as stream, zipfile.ZipFile(stream, "w") as archive:
            for key, array in entries.items():
                with archive.open(f"{key}.npy", "w", force_zip64=True) as member:
                    np.lib.format.write_array(member, np.asarray(array), allow_pickle=False)
        os.replace(temporary, target)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return target


def _read(path: PathLike) -> tuple[dict[str, Any], dict[str, Array]]:
    """The architecture and the arrays stored in ``path`` (no pickles)."""
    where = f"load_params: '{os.fspath(path)}'"
    try:
        data = np.load(path, allow_pickle=False)
    except ValueError as exc:  # neither .npy nor .npz: numpy would need a pickle
        msg = f"{where} is not a .npz file (layerkit never loads pickled data)."
        raise ParamFileError(msg) from exc
    if not isinstance(data, np.lib.npyio.NpzFile):
        msg = f"{where} is a .npy file (one array of shape {data.shape}), not a .npz file."
        raise ParamFileError(msg)
    with data:
        if META_KEY not in data.files:
            msg = (
                f"{where} is a .npz file without the {META_KEY!r} entry (it holds {data.files}); "
                "write it with layerkit.save_params."
            )
            raise ParamFileError(msg)
        try:
            stored = data[META_KEY]
            if stored.dtype.kind != "U" or stored.size != 1:
                msg = f"{where}: its {META_KEY!r} entry is not a JSON string ({stored.dtype})."
                raise ParamFileError(msg)
            meta = json.loads(str(stored.reshape(()).item()))
            arrays = {key: data[key] for key in data.files if key != META_KEY}
        except (ValueError, zipfile.BadZipFile) as exc:
            msg = f"{where} could not be read as layerkit parameters: {exc}"
            raise ParamFileError(msg) from exc
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        msg = f"{where}: its {META_KEY!r} entry is not a {FORMAT} description."
        raise ParamFileError(msg)
    layers = meta.get("layers")
    if not isinstance(layers, list) or not all(isinstance(layer, dict) for layer in layers):
        msg = f"{where}: its {META_KEY!r} entry has no list of layers."
        raise ParamFileError(msg)
    if meta.get("version") != VERSION:
        msg = f"{where} has format version {meta.get('version')!r}; this layerkit reads {VERSION}."
        raise ParamFileError(msg)
    return meta, arrays


def _differences(
    meta: dict[str, Any], arrays: dict[str, Array], model: Sequential | Layer
) -> list[str]:
    """Every way the file's tensors and layers differ from ``model``'s (empty: they match)."""
    params = model.params()
    problems: list[str] = []
    missing = [name for name in params if name not in arrays]
    extra = [name for name in arrays if name not in params]
    if missing:
        problems.append(f"the model's {missing} are not in the file")
    if extra:
        problems.append(f"the file's {extra} are not in the model")
    lossy: dict[tuple[str, str], list[str]] = {}
    for name, array in params.items():
        if name not in arrays:
            continue
        stored = arrays[name]
        if stored.shape != array.shape:
            problems.append(
                f"{name} has shape {stored.shape} in the file but {array.shape} in the model"
            )
        elif stored.dtype.kind != "f" or not np.can_cast(stored.dtype, array.dtype, "safe"):
            lossy.setdefault((str(stored.dtype), str(array.dtype)), []).append(name)
    for (stored_dtype, model_dtype), names in lossy.items():
        problems.append(
            f"{', '.join(names)} {'is' if len(names) == 1 else 'are'} {stored_dtype} in the file "
            f"but {model_dtype} in the model (would not load exactly)"
        )
    saved = [(str(layer.get("class")), str(layer.get("name"))) for layer in meta["layers"]]
    ours = [(type(layer).__name__, layer.name) for layer in _layers(model, "load_params")]
    if len(saved) != len(ours):
        problems.append(f"the file has {len(saved)} layers, the model {len(ours)}")
    for index, ((saved_class, saved_name), (our_class, our_name)) in enumerate(
        zip(saved, ours, strict=False)
    ):
        if saved_class != our_class:
            problems.append(
                f"layer {index} is {saved_name} in the file but {our_name} in the model"
            )
            break
    return problems


def load_params(model: Sequential | Layer, path: PathLike) -> None:
    """Load parameters saved by :func:`save_params` into ``model``, in place and exactly.

    The file must come from the same architecture: same layer classes in the same order, the
    same tensor names and shapes, and dtypes that convert to the model's without loss. On any
    mismatch a :class:`~layerkit.errors.ParamFileError` names the differing tensors, shapes or
    layers, and the model is left untouched.
    """
    _layers(model, "load_params")
    meta, arrays = _read(path)
    problems = _differences(meta, arrays, model)
    if problems:
        shown = "; ".join(problems[:6]) + ("; ..." if len(problems) > 6 else "")
        msg = f"load_params: '{os.fspath(path)}' was saved from another architecture: {shown}."
        raise ParamFileError(msg)
    for name, array in model.params().items():
        array[...] = arrays[name]
