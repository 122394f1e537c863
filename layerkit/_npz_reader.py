"""Reading a `.npz` parameter file as untrusted input, for [`load_params`][layerkit.load_params].

Only the members the model needs are read; each `.npy` header is checked against the model
before its data; no more than the model's size is decompressed, in bounded chunks; pickles
and NaN/Inf are refused. Every fault is a [`ParamFileError`][layerkit.errors.ParamFileError]
naming the file and the member.
"""

from __future__ import annotations

import json
import math
import zipfile
from collections.abc import Callable, Mapping
from typing import IO, Any, TypeVar

import attrs
import numpy as np

from layerkit._typing import Array
from layerkit._validate import nonfinite_summary
from layerkit.errors import ConfigError, LayerkitError, ParamFileError
from layerkit.layers.base import Layer
from layerkit.sequential import Sequential

META_KEY = "__layerkit__"
"""The `.npz` entry holding the architecture, as a JSON string."""

FORMAT = "layerkit-params"
VERSION = 1

META_MAX_BYTES = 1 << 20
"""The most bytes of architecture description `load_params` decompresses (1 MiB)."""

HEADER_MAX_BYTES = 10_000
"""The most bytes of one `.npy` header `load_params` reads (numpy's own limit)."""

CHUNK_BYTES = 1 << 20
"""Data is decompressed in chunks of at most this many bytes."""

T = TypeVar("T")


def model_layers(model: Sequential | Layer, where: str) -> tuple[Layer, ...]:
    """The layers of a Sequential or a single Layer; anything else is a ConfigError."""
    if isinstance(model, Sequential):
        return model.layers
    if isinstance(model, Layer):
        return (model,)
    msg = f"{where}: 'model' must be a Sequential or a Layer, got {type(model).__name__}."
    raise ConfigError(msg)


def shown_path(text: str) -> str:
    """A path for a one-line message: quoted, shortened in the middle when very long."""
    shown = text if len(text) <= 160 else f"{text[:80]}...{text[-60:]}"
    return f"'{shown}'"


@attrs.frozen
class _Header:
    """What a `.npy` member's header declares."""

    shape: tuple[int, ...]
    dtype: np.dtype[Any]
    fortran_order: bool

    @property
    def nbytes(self) -> int:
        return math.prod(self.shape) * self.dtype.itemsize


def _shown(value: object) -> str:
    """A string from the file, safe to put in a one-line message (short, no newlines)."""
    text = value if isinstance(value, str) else repr(value)
    return text if text.isprintable() and len(text) <= 60 else repr(text[:60])


class _Archive:
    """An open `.npz` archive, read defensively; every fault a ParamFileError."""

    def __init__(self, archive: zipfile.ZipFile, label: str) -> None:
        self.archive = archive
        self.label = label

    def fault(self, member: str | None, problem: str) -> ParamFileError:
        where = f"load_params: {shown_path(self.label)}" + (
            f", member {member!r}" if member else ""
        )
        return ParamFileError(f"{where} {problem}")

    def _member(self, info: zipfile.ZipInfo) -> tuple[IO[bytes], _Header]:
        """Open a member and parse its `.npy` header (no data read); pickles are refused."""
        stream = self.archive.open(info)
        try:
            version = np.lib.format.read_magic(stream)
            if version == (1, 0):
                header = np.lib.format.read_array_header_1_0(stream, HEADER_MAX_BYTES)
            elif version == (2, 0):
                header = np.lib.format.read_array_header_2_0(stream, HEADER_MAX_BYTES)
            else:
                raise self.fault(
                    info.filename, f"has an unsupported .npy format version {version}."
                )
            shape, fortran_order, dtype = header
            if dtype.hasobject:
                raise self.fault(info.filename, "holds Python objects (a pickle); never loaded.")
        except BaseException:
            stream.close()
            raise
        return stream, _Header(tuple(int(n) for n in shape), dtype, bool(fortran_order))

    def header(self, info: zipfile.ZipInfo) -> _Header:
        """The member's declared shape and dtype, read from its header only."""
        stream, header = self.guarded(info.filename, lambda: self._member(info))
        stream.close()
        return header

    def data(self, info: zipfile.ZipInfo, limit: int) -> tuple[_Header, np.ndarray[Any, Any]]:
        """The member's array, after checking that it declares at most `limit` bytes;
        decompressed in bounded chunks."""

        def read() -> tuple[_Header, np.ndarray[Any, Any]]:
            stream, header = self._member(info)
            with stream:
                if header.nbytes > limit:
                    raise self.fault(
                        info.filename,
                        f"declares {header.nbytes} bytes of data (shape {header.shape}, "
                        f"{header.dtype}); at most {limit} are read.",
                    )
                buffer = bytearray(header.nbytes)
                view = memoryview(buffer)
                filled = 0
                while filled < header.nbytes:
                    chunk = stream.read(min(CHUNK_BYTES, header.nbytes - filled))
                    if not chunk:
                        raise self.fault(
                            info.filename,
                            f"is truncated: {filled} of {header.nbytes} bytes of data.",
                        )
                    view[filled : filled + len(chunk)] = chunk
                    filled += len(chunk)
                if stream.read(1):
                    raise self.fault(info.filename, "has data after its array.")
            flat = np.frombuffer(buffer, dtype=header.dtype)
            if header.fortran_order:
                return header, flat.reshape(header.shape[::-1]).T
            return header, flat.reshape(header.shape)

        return self.guarded(info.filename, read)

    def guarded(self, member: str, call: Callable[[], T]) -> T:
        """`call()`, with any fault of the file turned into a ParamFileError."""
        try:
            result = call()
        except LayerkitError:
            raise
        except Exception as exc:  # a damaged archive fails in many ways (zlib, struct, ...)
            detail = " ".join(str(exc).split())[:200] or type(exc).__name__
            raise self.fault(member, f"cannot be read ({type(exc).__name__}: {detail}).") from exc
        return result


def _description(archive: _Archive, info: zipfile.ZipInfo) -> dict[str, Any]:
    """The architecture stored in the file, checked for its form."""
    member = info.filename
    header, stored = archive.data(info, META_MAX_BYTES)
    if header.dtype.kind != "U" or header.shape != ():
        raise archive.fault(member, f"is not a JSON string ({header.dtype}, shape {header.shape}).")
    try:
        meta = json.loads(str(stored.item()))
    except (ValueError, RecursionError) as exc:
        detail = type(exc).__name__ if isinstance(exc, RecursionError) else str(exc)[:120]
        raise archive.fault(member, f"is not valid JSON ({detail}).") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise archive.fault(member, f"is not a {FORMAT} description.")
    if meta.get("version") != VERSION:
        raise archive.fault(
            member,
            f"has format version {_shown(meta.get('version'))}; this layerkit reads {VERSION}.",
        )
    layers = meta.get("layers")
    if not isinstance(layers, list) or not all(
        isinstance(layer, dict) and isinstance(layer.get("class"), str) for layer in layers
    ):
        raise archive.fault(member, "has no list of layers with their classes.")
    return meta


def _differences(
    meta: dict[str, Any],
    headers: Mapping[str, _Header],
    extra: list[str],
    model: Sequential | Layer,
) -> list[str]:
    """Every way the file's tensors and layers differ from `model`'s (empty: they match)."""
    params = model.params()
    problems: list[str] = []
    missing = [name for name in params if name not in headers]
    if missing:
        problems.append(f"the model's {missing} are not in the file")
    if extra:
        problems.append(f"the file's {[_shown(name) for name in extra[:8]]} are not in the model")
    lossy: dict[tuple[str, str], list[str]] = {}
    for name, array in params.items():
        if name not in headers:
            continue
        stored = headers[name]
        if stored.shape != array.shape:
            shown = stored.shape if len(stored.shape) <= 8 else f"{stored.shape[:8]}..."
            problems.append(f"{name} has shape {shown} in the file but {array.shape} in the model")
        elif stored.dtype.kind != "f" or not np.can_cast(stored.dtype, array.dtype, "safe"):
            lossy.setdefault((str(stored.dtype), str(array.dtype)), []).append(name)
    for (stored_dtype, model_dtype), names in lossy.items():
        problems.append(
            f"{', '.join(names)} {'is' if len(names) == 1 else 'are'} {stored_dtype} in the file "
            f"but {model_dtype} in the model (would not load exactly)"
        )
    saved = [str(layer["class"]) for layer in meta["layers"]]
    ours = [type(layer).__name__ for layer in model_layers(model, "load_params")]
    if len(saved) != len(ours):
        problems.append(f"the file has {len(saved)} layers, the model {len(ours)}")
    for index, (saved_class, our_class) in enumerate(zip(saved, ours, strict=False)):
        if saved_class != our_class:
            problems.append(
                f"layer {index} is {_shown(saved_class)} in the file but {our_class} in the model"
            )
            break
    return problems


def read_params(model: Sequential | Layer, label: str, stream: IO[bytes]) -> dict[str, Array]:
    """The model's arrays from the open file `stream`, all checked (see `load_params`)."""
    where = f"load_params: {shown_path(label)}"
    try:
        magic = stream.read(6)
        stream.seek(0)
    except OSError as exc:
        raise ParamFileError(f"{where} cannot be read: {exc.strerror or exc}.") from exc
    if magic == b"\x93NUMPY":
        raise ParamFileError(f"{where} is a .npy file (one array), not a .npz file.")
    try:
        opened = zipfile.ZipFile(stream)
    except Exception as exc:  # BadZipFile, EOFError, OSError, ValueError ... on garbage
        msg = f"{where} is not a .npz file (layerkit never loads pickled data)."
        raise ParamFileError(msg) from exc
    with opened:
        archive = _Archive(opened, label)
        infos = opened.infolist()
        names = [info.filename for info in infos]
        repeated = sorted({name for name in names if names.count(name) > 1})
        if repeated:
            raise archive.fault(repeated[0], "appears more than once in the archive.")
        for name in names:
            if not name.endswith(".npy"):
                raise archive.fault(name, "is not a .npy array (no .npy suffix).")
        members = {info.filename[: -len(".npy")]: info for info in infos}
        if META_KEY not in members:
            held = [_shown(name) for name in list(members)[:8]]
            msg = (
                f"{where} is a .npz file without the {META_KEY!r} entry (it holds {held}); "
                "write it with layerkit.save_params."
            )
            raise ParamFileError(msg)
        meta = _description(archive, members[META_KEY])
        params = model.params()
        headers = {name: archive.header(members[name]) for name in params if name in members}
        extra = [name for name in members if name not in params and name != META_KEY]
        problems = _differences(meta, headers, extra, model)
        if problems:
            shown = "; ".join(problems[:6]) + ("; ..." if len(problems) > 6 else "")
            raise ParamFileError(f"{where} was saved from another architecture: {shown}.")
        arrays: dict[str, Array] = {}
        for name, target in params.items():
            member = members[name].filename
            _, stored = archive.data(members[name], target.nbytes)
            problem = nonfinite_summary(stored)
            if problem:
                raise archive.fault(member, f"holds {problem}; parameters must be finite.")
            arrays[name] = stored.astype(target.dtype)
        return arrays
