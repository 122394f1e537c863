"""Tests for layerkit.params: TensorSpec, ParamSpec, flatten / unflatten."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from layerkit.errors import DTypeError, GradientSpecError, LayerkitError, ShapeError
from layerkit.params import ParamSpec, TensorSpec


def two_tensor_spec() -> ParamSpec:
    return ParamSpec((TensorSpec("W", (2, 3)), TensorSpec("b", (2,))))


class TestTensorSpec:
    """A TensorSpec knows its number of entries."""

    def test_size_is_product_of_shape(self) -> None:
        """size multiplies the dimensions."""
        assert TensorSpec("W", (5, 4)).size == 20
        assert TensorSpec("b", (5,)).size == 5

    def test_scalar_has_one_entry(self) -> None:
        """A 0-d tensor holds one number."""
        assert TensorSpec("s", ()).size == 1

    def test_zero_sized_dimension(self) -> None:
        """A dimension of 0 makes an empty tensor."""
        assert TensorSpec("e", (3, 0)).size == 0


class TestParamSpecLayout:
    """A ParamSpec orders tensors and lays them out one after another."""

    def test_of_keeps_mapping_order(self) -> None:
        """ParamSpec.of keeps the iteration order of the mapping and the shapes."""
        spec = ParamSpec.of({"b": np.zeros(3), "W": np.zeros((3, 2)), "a": np.zeros(())})
        assert spec.names == ("b", "W", "a")
        assert [t.shape for t in spec] == [(3,), (3, 2), ()]
        assert len(spec) == 3

    def test_size_is_sum_of_sizes(self) -> None:
        """The flat length is the sum of the tensor sizes."""
        assert two_tensor_spec().size == 8

    def test_offsets_are_consecutive(self) -> None:
        """Each tensor starts where the previous one stopped."""
        assert two_tensor_spec().offsets() == {"W": (0, 6), "b": (6, 8)}

    def test_empty_spec(self) -> None:
        """A spec with no tensors has size 0 and flattens to an empty vector."""
        spec = ParamSpec()
        assert spec.size == 0
        assert len(spec) == 0
        flat = spec.flatten({})
        assert flat.shape == (0,)
        assert spec.unflatten(np.zeros(0)) == {}


class TestFlatten:
    """flatten concatenates named arrays row-major, in spec order."""

    def test_row_major_in_spec_order(self) -> None:
        """W's rows come first, then b, whatever order the mapping has."""
        arrays = {"b": np.array([10.0, 11.0]), "W": np.array([[0.0, 1, 2], [3, 4, 5]])}
        flat = two_tensor_spec().flatten(arrays)
        np.testing.assert_array_equal(flat, [0.0, 1, 2, 3, 4, 5, 10, 11])

    def test_fortran_ordered_input_is_still_row_major(self) -> None:
        """The memory layout of the input does not change the flat order."""
        W = np.asfortranarray(np.array([[0.0, 1, 2], [3, 4, 5]]))
        flat = two_tensor_spec().flatten({"W": W, "b": np.array([6.0, 7.0])})
        np.testing.assert_array_equal(flat, np.arange(8.0))

    def test_integers_become_float64(self) -> None:
        """Integer arrays are converted, not refused."""
        flat = two_tensor_spec().flatten({"W": np.ones((2, 3), dtype=int), "b": [1, 2]})
        assert flat.dtype == np.float64

    def test_float32_stays_float32(self) -> None:
        """All-float32 arrays give a float32 vector; a float64 part promotes the result."""
        spec = two_tensor_spec()
        W32 = np.ones((2, 3), dtype=np.float32)
        assert spec.flatten({"W": W32, "b": np.ones(2, dtype=np.float32)}).dtype == np.float32
        assert spec.flatten({"W": W32, "b": np.ones(2)}).dtype == np.float64

    def test_missing_and_extra_keys_are_named(self) -> None:
        """A mapping with other keys is refused, naming the missing and unexpected ones."""
        with pytest.raises(GradientSpecError, match=r"missing \['b'\], unexpected \['c'\]"):
            two_tensor_spec().flatten({"W": np.zeros((2, 3)), "c": np.zeros(2)})

    def test_wrong_shape_names_both_shapes(self) -> None:
        """A tensor of another shape is refused, naming the key and both shapes."""
        with pytest.raises(GradientSpecError) as info:
            two_tensor_spec().flatten({"W": np.zeros((3, 2)), "b": np.zeros(2)}, what="grads")
        message = str(info.value)
        assert "grads['W']" in message
        assert "(2, 3)" in message
        assert "(3, 2)" in message

    def test_complex_is_refused(self) -> None:
        """Complex arrays cannot be flattened into a real vector."""
        with pytest.raises(DTypeError, match="'W'"):
            two_tensor_spec().flatten({"W": np.zeros((2, 3), dtype=complex), "b": np.zeros(2)})


class TestUnflatten:
    """unflatten splits a flat vector back into named arrays, after checking its length."""

    def test_round_trip_is_bitwise_exact(self, rng: np.random.Generator) -> None:
        """unflatten(flatten(a)) reproduces every bit of a, and flatten(unflatten(v)) of v."""
        spec = two_tensor_spec()
        arrays = {"W": rng.standard_normal((2, 3)), "b": rng.standard_normal(2)}
        back = spec.unflatten(spec.flatten(arrays))
        assert list(back) == ["W", "b"]
        for name, array in arrays.items():
            assert back[name].shape == array.shape
            assert back[name].tobytes() == array.tobytes()
        vector = rng.standard_normal(8)
        assert spec.flatten(spec.unflatten(vector)).tobytes() == vector.tobytes()

    def test_pieces_are_the_right_slices(self) -> None:
        """W is the first six entries reshaped row-major, b the last two."""
        pieces = two_tensor_spec().unflatten(np.arange(8.0))
        np.testing.assert_array_equal(pieces["W"], [[0.0, 1, 2], [3, 4, 5]])
        np.testing.assert_array_equal(pieces["b"], [6.0, 7.0])

    def test_pieces_are_views_of_the_vector(self) -> None:
        """As documented, the pieces share memory with the vector (no copy)."""
        vector = np.arange(8.0)
        pieces = two_tensor_spec().unflatten(vector)
        assert np.shares_memory(pieces["W"], vector)
        assert np.shares_memory(pieces["b"], vector)

    def test_column_vector_is_accepted(self) -> None:
        """The seed's (n, 1) column (dictionary_to_vector's output) is accepted."""
        pieces = two_tensor_spec().unflatten(np.arange(8.0).reshape(8, 1))
        np.testing.assert_array_equal(pieces["b"], [6.0, 7.0])

    @pytest.mark.parametrize("length", [0, 7, 9, 48])
    def test_wrong_length_names_both_lengths(self, length: int) -> None:
        """A vector of the wrong length is refused; the message says both lengths."""
        with pytest.raises(ShapeError) as info:
            two_tensor_spec().unflatten(np.zeros(length))
        message = str(info.value)
        assert "length 8" in message
        assert f"length {length}" in message
        assert "['W', 'b']" in message

    def test_matrix_is_refused(self) -> None:
        """A 2-D array that is not a row or column is refused with its shape."""
        with pytest.raises(ShapeError, match=r"\(4, 2\)"):
            two_tensor_spec().unflatten(np.zeros((4, 2)))

    def test_owner_appears_in_message(self) -> None:
        """The caller's name is used in the message."""
        with pytest.raises(ShapeError, match=r"^Linear\(3->2\)\.unflatten"):
            two_tensor_spec().unflatten(np.zeros(3), owner="Linear(3->2)")

    def test_errors_are_value_errors(self) -> None:
        """Shape errors are LayerkitErrors and ValueErrors."""
        with pytest.raises(ValueError) as info:
            two_tensor_spec().unflatten(np.zeros(3))
        assert isinstance(info.value, LayerkitError)


shapes = st.lists(st.integers(1, 4), min_size=0, max_size=3).map(tuple)


class TestRoundTripProperty:
    """flatten / unflatten are inverse for any list of shapes."""

    @settings(max_examples=40, deadline=None, derandomize=True)
    @given(
        shape_list=st.lists(shapes, min_size=1, max_size=5),
        seed=st.integers(0, 2**32 - 1),
    )
    def test_round_trip(self, shape_list: list[tuple[int, ...]], seed: int) -> None:
        """Any random arrays survive flatten then unflatten bit for bit."""
        generator = np.random.default_rng(seed)
        arrays = {f"t{i}": generator.standard_normal(shape) for i, shape in enumerate(shape_list)}
        spec = ParamSpec.of(arrays)
        flat = spec.flatten(arrays)
        assert flat.shape == (sum(int(np.prod(s)) for s in shape_list),)
        back = spec.unflatten(flat)
        for name, array in arrays.items():
            assert back[name].shape == np.shape(array)
            assert back[name].tobytes() == np.asarray(array).tobytes()
