"""The plain-data codec: round trips, tags, and refusal of anything but plain data."""

from __future__ import annotations

import collections
import pickle

import numpy as np
import pytest

from harness.execution import codec


@pytest.mark.parametrize(
    "value",
    [
        None,
        True,
        3,
        -2.5,
        float("inf"),
        "text",
        b"\x00\xff",
        [1, 2.0, "a", None],
        (1, (2, 3), [4]),
        {"a": [1, 2], (1, 2): {3}},
        {1, 2, 3},
        frozenset({("a", 1)}),
        1 + 2j,
        [[1, 2], [3, 4]],
        [(1, "a"), (2, "b")],
        2**20000,  # more digits than Python parses as decimal text
        [],
        {},
    ],
    ids=lambda v: type(v).__name__,
)
def test_round_trip_keeps_value_and_type(value: object) -> None:
    out = codec.decode(codec.encode(value))
    assert out == value
    assert type(out) is type(value)


def test_nested_containers_keep_inner_types() -> None:
    value = [{"k": (1, {2.5})}, [frozenset({1})], ((1 + 1j),)]
    out = codec.decode(codec.encode(value))
    assert out == value
    assert type(out[0]["k"]) is tuple and type(out[0]["k"][1]) is set
    assert type(out[1][0]) is frozenset


def test_numpy_values_come_back_as_numpy() -> None:
    arr = np.arange(6, dtype=np.int32).reshape(2, 3)
    out = codec.decode(codec.encode(arr))
    assert isinstance(out, np.ndarray) and out.dtype == np.int32 and out.shape == (2, 3)
    assert (out == arr).all()
    scalar = codec.decode(codec.encode(np.float64(1.5)))
    assert type(scalar) is np.float64 and scalar == 1.5


class AlwaysEqual(str):
    """The classic cheat: a str subclass that equals anything."""

    def __eq__(self, other: object) -> bool:
        return True

    __hash__ = str.__hash__


def test_subclass_with_eq_override_arrives_as_its_base_value() -> None:
    out = codec.decode(codec.encode(AlwaysEqual("wrong")))
    assert out != "right"
    assert out == "wrong"
    assert type(out) is not AlwaysEqual and type(out) is not str


def test_namedtuple_and_counter_compare_like_their_base() -> None:
    point = collections.namedtuple("Point", "x y")(1, 2)
    assert codec.decode(codec.encode(point)) == (1, 2)
    assert codec.decode(codec.encode(collections.Counter("aab"))) == {"a": 2, "b": 1}


def test_opaque_objects_equal_nothing_but_keep_iteration_when_asked() -> None:
    gen = (i for i in range(3))
    out = codec.decode(codec.encode(gen))
    assert isinstance(out, codec.Opaque) and out != [0, 1, 2] and out is not None
    items = codec.decode(codec.encode((i for i in range(3)), iterate_opaque=True))
    assert set(items) == {0, 1, 2}


def test_plain_payload_flag() -> None:
    assert codec.is_plain(codec.encode([1, "a", (2, 3)]))
    assert codec.is_plain(codec.encode([1, {2}]))  # a set of scalars is plain too
    assert not codec.is_plain(codec.encode([1, 2j]))


class Evil:
    def __reduce__(self):  # type: ignore[no-untyped-def]
        return (print, ("owned",))


def test_decode_refuses_pickled_globals() -> None:
    crafted = b"P" + pickle.dumps(Evil())
    with pytest.raises(ValueError, match="refused global"):
        codec.decode(crafted)


@pytest.mark.parametrize("junk", [b"", b"X123", b"P\x80\x05garbage", b"T" + pickle.dumps([1])[:-3]])
def test_decode_rejects_malformed_payloads(junk: bytes) -> None:
    with pytest.raises(ValueError):
        codec.decode(junk)


def test_self_referencing_output_is_an_error_not_a_hang() -> None:
    loop: list[object] = []
    loop.append(loop)
    with pytest.raises((ValueError, RecursionError)):
        codec.encode(loop)
