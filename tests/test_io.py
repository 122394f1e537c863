"""save_params / load_params: a parameter file is untrusted input.

load_params reads only the members the model needs, checks each .npy header before its data,
never decompresses more than the model's size, refuses pickles, NaN and damaged files with a
ParamFileError naming the file and member, and leaves the model untouched on every error.
save_params replaces atomically, keeps permissions and leaves no temporary file behind.
"""

from __future__ import annotations

import io
import json
import os
import stat
import tracemalloc
import zipfile
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import layerkit as lk
from layerkit.errors import ConfigError, LayerkitError, NonFiniteError, ParamFileError
from layerkit.io import META_KEY, architecture
from layerkit.layers import Linear, ReLU, Sigmoid
from layerkit.losses import BCELoss

MiB = 1 << 20


def fingerprint(model: lk.Sequential | lk.Layer) -> dict[str, bytes]:
    return {name: a.dtype.str.encode() + a.tobytes() for name, a in model.params().items()}


def npy_header(shape: tuple[int, ...], dtype: str = "<f8", fortran: bool = False) -> bytes:
    """A version 1.0 .npy header declaring ``shape`` and ``dtype`` (no data)."""
    out = io.BytesIO()
    header = {"descr": dtype, "fortran_order": fortran, "shape": shape}
    np.lib.format.write_array_header_1_0(out, header)
    return out.getvalue()


def npy_bytes(array: np.ndarray[Any, Any]) -> bytes:
    out = io.BytesIO()
    np.lib.format.write_array(out, array, allow_pickle=False)
    return out.getvalue()


def meta_bytes(model: lk.Sequential | lk.Layer, **changes: object) -> bytes:
    return npy_bytes(np.array(json.dumps({**architecture(model), **changes})))


def write_npz(
    path: Path,
    members: Mapping[str, bytes | Callable[[Any], None]],
    *,
    compress: int = zipfile.ZIP_STORED,
) -> Path:
    """An archive with the given raw members (bytes, or a writer called with the member)."""
    with zipfile.ZipFile(path, "w", compression=compress) as archive:
        for name, content in members.items():
            with archive.open(name, "w", force_zip64=True) as member:
                if isinstance(content, bytes):
                    member.write(content)
                else:
                    content(member)
    return path


def valid_members(model: lk.Sequential | lk.Layer) -> dict[str, bytes | Callable[[Any], None]]:
    members: dict[str, bytes | Callable[[Any], None]] = {
        f"{name}.npy": npy_bytes(array) for name, array in model.params().items()
    }
    members[f"{META_KEY}.npy"] = meta_bytes(model)
    return members


def zeros_writer(header: bytes, nbytes: int) -> Callable[[Any], None]:
    """Writes ``header`` then ``nbytes`` zero bytes, a megabyte at a time."""

    def write(member: Any) -> None:
        member.write(header)
        block = bytes(MiB)
        left = nbytes
        while left > 0:
            member.write(block[: min(MiB, left)])
            left -= MiB

    return write


def net(seed: int = 0) -> lk.Sequential:
    return lk.mlp([4, 5, 3, 1], seed=seed)


def w2_with_nan() -> bytes:
    W2 = net().params()["W2"].copy()
    W2[1, 2] = np.nan
    return npy_bytes(W2)


@pytest.fixture
def refused(tmp_path: Path) -> Iterator[Callable[[Path, str], ParamFileError]]:
    """Load ``path`` into a fresh net: must raise a ParamFileError matching ``pattern`` and
    leave the net bit for bit as it was."""

    def check(path: Path, pattern: str) -> ParamFileError:
        model = net(seed=3)
        before = fingerprint(model)
        with pytest.raises(ParamFileError, match=pattern) as info:
            lk.load_params(model, path)
        assert fingerprint(model) == before
        assert "\n" not in str(info.value)
        return info.value

    yield check


class TestDamagedFiles:
    """Every fault of the file is a ParamFileError naming the file (and member)."""

    @pytest.mark.parametrize(
        ("content", "pattern"),
        [
            (b"", "is not a .npz file"),
            (b"garbage" * 100, "is not a .npz file"),
            (b"PK\x03\x04" + bytes(40), "is not a .npz file"),
            (b"\x93NUMPY\x01\x00", r"is a .npy file \(one array\), not a .npz file"),
        ],
        ids=["empty", "garbage", "zip-magic-only", "npy"],
    )
    def test_not_an_archive(
        self,
        tmp_path: Path,
        refused: Callable[[Path, str], ParamFileError],
        content: bytes,
        pattern: str,
    ) -> None:
        """Empty, garbage and .npy files are named and refused."""
        path = tmp_path / "bad.npz"
        path.write_bytes(content)
        error = refused(path, pattern)
        assert "bad.npz" in str(error)

    @pytest.mark.parametrize("keep", [0.3, 0.6, 0.9, 0.99])
    def test_truncated_file(
        self, tmp_path: Path, refused: Callable[[Path, str], ParamFileError], keep: float
    ) -> None:
        """A file cut short anywhere is refused (never BadZipFile or EOFError)."""
        path = lk.save_params(net(), tmp_path / "model.npz")
        data = path.read_bytes()
        path.write_bytes(data[: int(len(data) * keep)])
        refused(path, "model.npz")

    def test_missing_file_and_directory(
        self, tmp_path: Path, refused: Callable[[Path, str], ParamFileError]
    ) -> None:
        """A missing path and a directory say so."""
        refused(tmp_path / "nope.npz", r"cannot open .*nope.npz.*No such file")
        refused(tmp_path, "it is a directory")

    # Stable ids (not repr, which shows the BytesIO's address): xdist workers must agree.
    @pytest.mark.parametrize(
        "path", [None, 3, "", io.BytesIO(b"")], ids=["None", "3", "''", "BytesIO"]
    )
    def test_not_a_path(self, path: object) -> None:
        """None, numbers, empty strings and open file objects are not paths."""
        model = net()
        with pytest.raises(ParamFileError, match="'path' must be a file path"):
            lk.load_params(model, path)  # type: ignore[arg-type]

    @pytest.mark.parametrize(
        ("member", "content", "pattern"),
        [
            ("readme.txt", b"hello", r"member 'readme.txt' is not a .npy array \(no .npy suffix\)"),
            ("W1.npy", npy_header((5, 4), "|O") + b"\x80\x04junk", r"member 'W1.npy'.*pickle"),
            (
                "W2.npy",
                w2_with_nan(),
                r"member 'W2.npy' holds 1 NaN/Inf value\(s\) \(first at index \(1, 2\)",
            ),
            ("b1.npy", npy_header((5,)) + bytes(16), r"member 'b1.npy'.*truncated: 16 of 40"),
        ],
        ids=["no-npy-suffix", "pickle", "nan", "truncated-data"],
    )
    def test_bad_member(
        self,
        tmp_path: Path,
        refused: Callable[[Path, str], ParamFileError],
        member: str,
        content: bytes,
        pattern: str,
    ) -> None:
        """A member that is not NAME.npy, a pickled object array, NaN data, or data shorter
        than its header says: refused, naming the member (and for NaN, where)."""
        members = valid_members(net())
        members[member] = content
        refused(write_npz(tmp_path / "m.npz", members), pattern)

    def test_repeated_member(
        self, tmp_path: Path, refused: Callable[[Path, str], ParamFileError]
    ) -> None:
        """A zip with the same member name twice (the later one would shadow) is refused."""
        path = write_npz(tmp_path / "m.npz", valid_members(net()))
        with (
            pytest.warns(UserWarning, match="Duplicate name"),
            zipfile.ZipFile(path, "a") as archive,
        ):
            archive.writestr("W1.npy", npy_bytes(np.zeros((5, 4))))
        refused(path, r"member 'W1.npy' appears more than once")

    def test_unknown_member_is_refused(
        self, tmp_path: Path, refused: Callable[[Path, str], ParamFileError]
    ) -> None:
        """A member the model does not have is refused by name, as another architecture."""
        members = valid_members(net())
        members["W9.npy"] = npy_bytes(np.ones(3))
        refused(write_npz(tmp_path / "m.npz", members), r"the file's \['W9'\] are not in the model")

    @pytest.mark.parametrize(
        ("meta", "pattern"),
        [
            (
                npy_bytes(np.array("[" * 100_000 + "]" * 100_000)),
                r"not valid JSON \(RecursionError",
            ),
            (npy_bytes(np.array("{nope")), "not valid JSON"),
            (npy_bytes(np.array([1.0, 2.0])), "is not a JSON string"),
            (npy_bytes(np.array(json.dumps({"format": "other"}))), "not a layerkit-params"),
            (npy_header((), "<U10000000"), "declares 40000000 bytes"),
        ],
        ids=["deep-json", "bad-json", "floats", "other-format", "huge-string"],
    )
    def test_bad_description(
        self,
        tmp_path: Path,
        refused: Callable[[Path, str], ParamFileError],
        meta: bytes,
        pattern: str,
    ) -> None:
        """The architecture entry is parsed defensively (deep nesting, huge declared sizes)."""
        members = valid_members(net())
        members[f"{META_KEY}.npy"] = meta
        error = refused(write_npz(tmp_path / "m.npz", members), pattern)
        assert f"member '{META_KEY}.npy'" in str(error)

    def test_crafted_layer_classes_are_named_by_class(
        self, tmp_path: Path, refused: Callable[[Path, str], ParamFileError]
    ) -> None:
        """A file whose layer 1 is a Tanh under the name "ReLU" says Tanh vs ReLU."""
        model = net()
        meta = architecture(model)
        meta["layers"][1] = {"class": "Tanh", "name": "ReLU"}
        members = valid_members(model)
        members[f"{META_KEY}.npy"] = npy_bytes(np.array(json.dumps(meta)))
        refused(write_npz(tmp_path / "m.npz", members), "layer 1 is Tanh in the file but ReLU in")

    def test_corrupted_compressed_data(
        self, tmp_path: Path, refused: Callable[[Path, str], ParamFileError]
    ) -> None:
        """Flipped bytes inside a compressed member are caught (CRC or zlib), never raw."""
        path = write_npz(tmp_path / "m.npz", valid_members(net()), compress=zipfile.ZIP_DEFLATED)
        data = bytearray(path.read_bytes())
        with zipfile.ZipFile(path) as archive:
            info = archive.getinfo("W1.npy")
        start = info.header_offset + 30 + len(info.filename) + 20
        data[start : start + 8] = bytes(8)
        path.write_bytes(bytes(data))
        refused(path, "m.npz")


class TestBoundedReading:
    """Nothing beyond the model's size is decompressed: zip bombs are refused cheaply."""

    @staticmethod
    def peak_bytes(call: Callable[[], object]) -> int:
        tracemalloc.start()
        try:
            call()
        except LayerkitError:
            pass
        finally:
            _, peak = tracemalloc.get_traced_memory()
            tracemalloc.stop()
        return peak

    def bomb(self, path: Path, name: str, header: bytes, nbytes: int) -> Path:
        members = valid_members(net())
        members[name] = zeros_writer(header, nbytes)
        return write_npz(path, members, compress=zipfile.ZIP_DEFLATED)

    @pytest.mark.parametrize(
        ("name", "header", "pattern"),
        [
            ("W1.npy", npy_header((50_000_000,)), r"W1 has shape \(50000000,\) in the file"),
            ("W1.npy", npy_header((5, 4)), "member 'W1.npy' has data after its array"),
            ("extra.npy", npy_header((50_000_000,)), r"the file's \['extra'\] are not in"),
            (f"{META_KEY}.npy", npy_header((), "<U100000000"), "declares 400000000 bytes"),
        ],
        ids=["declared-shape", "trailing-data", "unknown-member", "description"],
    )
    def test_zip_bomb_is_refused_with_little_memory(
        self,
        tmp_path: Path,
        refused: Callable[[Path, str], ParamFileError],
        name: str,
        header: bytes,
        pattern: str,
    ) -> None:
        """A ~120 KB file holding 120 MB of compressed zeros is refused with < 50 MB of
        allocations."""
        path = self.bomb(tmp_path / "bomb.npz", name, header, 120_000_000)
        assert path.stat().st_size < 2 * MiB
        refused(path, pattern)
        peak = self.peak_bytes(lambda: lk.load_params(net(), path))
        assert peak < 50 * MiB, f"{peak / MiB:.1f} MiB"

    def test_header_declaring_terabytes(
        self, tmp_path: Path, refused: Callable[[Path, str], ParamFileError]
    ) -> None:
        """A header declaring 7 TiB is refused from its shape (no MemoryError)."""
        members = valid_members(net())
        members["W1.npy"] = npy_header((7, 1 << 20, 1 << 17)) + bytes(64)  # 7 TiB of float64
        refused(write_npz(tmp_path / "big.npz", members), r"W1 has shape \(7, 1048576, 131072\)")


class TestWholeOrNothing:
    """On any error the model is left as it was, bit for bit."""

    def test_read_only_array_in_the_model(self, tmp_path: Path) -> None:
        """A read-only b3 is found before W1 is written."""
        path = lk.save_params(net(seed=1), tmp_path / "m.npz")
        model = net(seed=2)
        model.params()["b3"].flags.writeable = False
        before = fingerprint(model)
        with pytest.raises(ConfigError, match="load_params: the model's b3 is a read-only array"):
            lk.load_params(model, path)
        assert fingerprint(model) == before

    def test_parameter_that_is_not_an_array(self, tmp_path: Path) -> None:
        """A user layer whose params() holds a list is refused before the file is read."""

        class ListScale(lk.Layer):
            def params(self) -> dict[str, Any]:
                return {"g": [1.0, 2.0]}

            def forward(self, x: Any, params: Any = None, noise: Any = None) -> Any:
                raise NotImplementedError

            def backward(self, cache: Any, grad_out: Any) -> Any:
                raise NotImplementedError

        (tmp_path / "m.npz").write_bytes(b"")
        with pytest.raises(ConfigError, match="the model's g is list"):
            lk.load_params(ListScale(), tmp_path / "m.npz")

    def test_fortran_order_and_big_endian_members_load_exactly(self, tmp_path: Path) -> None:
        """Other writers' layouts (Fortran order, big-endian) load to the same values."""
        source = net(seed=1)
        members = valid_members(source)
        members["W1.npy"] = npy_bytes(np.asfortranarray(source.params()["W1"]))
        members["W2.npy"] = npy_bytes(source.params()["W2"].astype(">f8"))
        target = net(seed=2)
        lk.load_params(target, write_npz(tmp_path / "m.npz", members))
        assert fingerprint(target) == fingerprint(source)

    def test_float32_file_into_float64_model(self, tmp_path: Path) -> None:
        """A float32 file loads into a float64 model exactly (a lossless widening)."""
        source = net(seed=1).astype(np.float32)
        target = net(seed=2)
        lk.load_params(target, lk.save_params(source, tmp_path / "m.npz"))
        for name, array in target.params().items():
            assert array.dtype == np.float64
            np.testing.assert_array_equal(array, source.params()[name])


class TestSave:
    """save_params: atomic, permission-keeping, never leaves temporary files."""

    def test_new_file_follows_the_umask(self, tmp_path: Path) -> None:
        """A new file gets 0o666 minus the umask (not mkstemp's 0600)."""
        previous = os.umask(0o027)
        try:
            path = lk.save_params(net(), tmp_path / "m.npz")
        finally:
            os.umask(previous)
        assert stat.S_IMODE(path.stat().st_mode) == 0o640

    @pytest.mark.parametrize("mode", [0o644, 0o600, 0o664])
    def test_existing_file_keeps_its_mode(self, tmp_path: Path, mode: int) -> None:
        """Replacing a file keeps its permission bits."""
        path = tmp_path / "m.npz"
        path.write_bytes(b"old")
        path.chmod(mode)
        lk.save_params(net(), path)
        assert stat.S_IMODE(path.stat().st_mode) == mode
        assert sorted(p.name for p in tmp_path.iterdir()) == ["m.npz"]

    def test_interrupt_removes_the_temporary_file(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """Ctrl-C in the middle of a save leaves the old file and no temporary file."""
        path = lk.save_params(net(seed=1), tmp_path / "m.npz")
        content = path.read_bytes()

        def interrupted(*args: object, **kwargs: object) -> None:
            raise KeyboardInterrupt

        monkeypatch.setattr(np.lib.format, "write_array", interrupted)
        with pytest.raises(KeyboardInterrupt):
            lk.save_params(net(seed=2), path)
        assert path.read_bytes() == content
        assert sorted(p.name for p in tmp_path.iterdir()) == ["m.npz"]

    def test_unwritable_places(self, tmp_path: Path) -> None:
        """A directory, a missing folder, or None as the target: ParamFileError."""
        with pytest.raises(ParamFileError, match="it is a directory"):
            lk.save_params(net(), tmp_path)
        with pytest.raises(ParamFileError, match=r"cannot write .*no-dir.*No such file"):
            lk.save_params(net(), tmp_path / "no-dir" / "m.npz")
        with pytest.raises(ParamFileError, match="'path' must be a file path"):
            lk.save_params(net(), None)  # type: ignore[arg-type]
        assert list(tmp_path.iterdir()) == []

    @pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs FIFOs")
    def test_special_files_are_never_replaced(self, tmp_path: Path) -> None:
        """A FIFO (like a device) is refused by both, never replaced, and load does not hang
        waiting for a writer."""
        fifo = tmp_path / "pipe.npz"
        os.mkfifo(fifo)
        for call in (lk.save_params, lk.load_params):
            with pytest.raises(ParamFileError, match="it is not a regular file"):
                call(net(), fifo)
        assert stat.S_ISFIFO(fifo.stat().st_mode)

    def test_symlink_is_written_through(self, tmp_path: Path) -> None:
        """Saving to a symlink replaces the file it points to and keeps the link."""
        real, link = tmp_path / "real.npz", tmp_path / "link.npz"
        real.write_bytes(b"old")
        link.symlink_to(real)
        lk.save_params(net(seed=1), link)
        assert link.is_symlink()
        model = net(seed=2)
        lk.load_params(model, real)
        assert fingerprint(model) == fingerprint(net(seed=1))

    @pytest.mark.parametrize("path", ["a\x00b", "x" * 5000], ids=["nul", "too-long"])
    def test_impossible_names(self, tmp_path: Path, path: str) -> None:
        """A name with a NUL byte, or too long for the system: ParamFileError, one line."""
        for call in (lk.save_params, lk.load_params):
            with pytest.raises(ParamFileError) as info:
                call(net(), path)
            assert len(str(info.value)) < 400

    def test_nan_is_not_saved(self, tmp_path: Path) -> None:
        """A model holding NaN is refused (the file could not be loaded), no file written."""
        model = net()
        model.params()["W2"][0, 0] = np.nan
        with pytest.raises(NonFiniteError, match="save_params: the model's W2 holds 1 NaN"):
            lk.save_params(model, tmp_path / "m.npz")
        assert list(tmp_path.iterdir()) == []


# -- property: garbage files ---------------------------------------------------------------------


def _reference_file() -> bytes:
    out = io.BytesIO()
    model = lk.Sequential(Linear(3, 2, seed=0), ReLU(), Linear(2, 1, seed=1), Sigmoid(),
                          loss=BCELoss())  # fmt: skip
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name, array in model.params().items():
            archive.writestr(f"{name}.npy", npy_bytes(array))
        archive.writestr(f"{META_KEY}.npy", meta_bytes(model))
    return out.getvalue()


REFERENCE = _reference_file()


@st.composite
def damaged_files(draw: st.DrawFn) -> bytes:
    """The reference file with random bytes overwritten, cut, or appended, or pure noise."""
    kind = draw(st.sampled_from(["flip", "cut", "append", "noise"]))
    if kind == "noise":
        return draw(st.binary(max_size=2000))
    data = bytearray(REFERENCE)
    if kind == "cut":
        return bytes(data[: draw(st.integers(0, len(data)))])
    if kind == "append":
        return bytes(data) + draw(st.binary(min_size=1, max_size=200))
    for _ in range(draw(st.integers(1, 8))):
        at = draw(st.integers(0, len(data) - 1))
        data[at] = draw(st.integers(0, 255))
    return bytes(data)


class TestGarbageProperty:
    """Any bytes at all: the correct parameters or a layerkit error, never a changed model."""

    @settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(content=damaged_files())
    def test_damaged_file(self, tmp_path_factory: pytest.TempPathFactory, content: bytes) -> None:
        """Loads exactly the reference values, or raises a LayerkitError and changes nothing."""
        path = tmp_path_factory.mktemp("garbage") / "m.npz"
        path.write_bytes(content)
        model = lk.Sequential(Linear(3, 2, seed=5), ReLU(), Linear(2, 1, seed=6), Sigmoid(),
                              loss=BCELoss())  # fmt: skip
        before = fingerprint(model)
        reference = lk.Sequential(Linear(3, 2, seed=0), ReLU(), Linear(2, 1, seed=1), Sigmoid())
        try:
            lk.load_params(model, path)
        except LayerkitError as error:
            assert isinstance(error, ValueError | TypeError)
            assert fingerprint(model) == before
        else:
            assert fingerprint(model) == fingerprint(reference)
