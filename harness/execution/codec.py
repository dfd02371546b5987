"""Plain-data codec for values crossing the sandbox boundary.

Untrusted programs never hand Python objects to the harness: the program's
process converts what a function returned into a tree of *plain* built-in
values (``None``, ``bool``, ``int``, ``float``, ``str``, ``bytes``, ``list``,
``tuple``, ``dict``, ``set``, ``frozenset``) and pickles that tree; the
harness unpickles it with an unpickler that refuses every global, so only
those built-in types can come out, whatever the bytes say.  A returned object
whose class overrides ``__eq__`` therefore arrives as its base value (marked
foreign) or as an :class:`Opaque` marker, and comparisons run on data the
program cannot influence.

Values that are not plain travel as *tags*, 3-tuples whose first item is
:data:`TAG`: complex numbers, numpy arrays and scalars (rebuilt by the
trusted numpy), instances of subclasses of plain types, and opaque objects.
Tags are replaced only when the payload's first byte says the tree holds any
(``T``); plain payloads (``P``) decode entirely in C.

Pickle is used for speed (large lists of numbers encode about 7x faster than
as JSON).  The module imports only the standard library at import time: the
sandbox worker imports it before forking runners.
"""

from __future__ import annotations

import io
import pickle
import sys
from itertools import chain
from typing import Any

TAG = "\x00harness.codec.tag\x00"
_PLAIN_SCALARS = frozenset({int, float, str, bool, type(None), bytes})
_SEQ = frozenset({list, tuple})
_SEQ_OR_SCALAR = _PLAIN_SCALARS | _SEQ
_MAX_DEPTH = 500


class Opaque:
    """Stands for a returned object that is not plain data.

    It is never equal to anything but itself, is not ``None``, and iterates
    over the items the program produced when the caller asked for them
    (EvalPlus compares some MBPP+ outputs as ``set(out)``, which accepts any
    iterable).
    """

    __slots__ = ("type_name", "items")

    def __init__(self, type_name: str, items: list[Any] | None = None) -> None:
        self.type_name = type_name
        self.items = items

    def __iter__(self):  # type: ignore[no-untyped-def]
        if self.items is None:
            raise TypeError(f"'{self.type_name}' object is not iterable")
        return iter(self.items)

    def __repr__(self) -> str:
        return f"<opaque {self.type_name}>"


class _Foreign:
    """Mixin marking a value whose exact type was a subclass of a plain type."""

    foreign_type: str = ""


def _foreign_class(base: type) -> type:
    return type(f"Foreign{base.__name__.capitalize()}", (_Foreign, base), {})


_FOREIGN = {base: _foreign_class(base) for base in (int, float, complex, str, bytes, list, tuple, dict, set, frozenset)}


def _type_name(value: Any) -> str:
    t = type(value)
    return f"{getattr(t, '__module__', '?')}.{getattr(t, '__qualname__', t.__name__)}"


class _Encoder:
    """Turns a value into a plain tree; records whether any tag was needed."""

    def __init__(self, iterate_opaque: bool) -> None:
        self.iterate_opaque = iterate_opaque
        self.tagged = False

    def tag(self, kind: str, payload: Any) -> tuple[str, str, Any]:
        self.tagged = True
        return (TAG, kind, payload)

    def walk(self, value: Any, depth: int = 0) -> Any:
        t = type(value)
        if t in _PLAIN_SCALARS:
            return value
        if depth > _MAX_DEPTH:
            raise ValueError("output nested too deeply")
        d = depth + 1
        if t is list or t is tuple or t is set or t is frozenset:
            # Containers of scalars (or of lists/tuples of scalars) are their
            # own plain tree; the check runs in C, which matters for outputs
            # of millions of items.
            types = set(map(type, value))
            if types <= _PLAIN_SCALARS:
                return value
            if types <= _SEQ_OR_SCALAR:
                nested = value if types <= _SEQ else (v for v in value if type(v) in _SEQ)
                if set(map(type, chain.from_iterable(nested))) <= _PLAIN_SCALARS:
                    return value
            items = [self.walk(v, d) for v in value]
            if t is list:
                return items
            if t is tuple:
                return tuple(items)
            return self.tag("set" if t is set else "frozenset", items)
        if t is dict:
            if set(map(type, value)) <= _PLAIN_SCALARS and set(map(type, value.values())) <= _PLAIN_SCALARS:
                return value
            return self.tag("dict", [(self.walk(k, d), self.walk(v, d)) for k, v in value.items()])
        if t is complex:
            return self.tag("complex", (value.real, value.imag))
        np = sys.modules.get("numpy")
        if np is not None:
            if isinstance(value, np.ndarray):
                return self.tag("ndarray", (value.dtype.str, tuple(value.shape), self.walk(value.tolist(), d)))
            if isinstance(value, np.generic) and value.dtype.kind in "biufc":
                return self.tag("npscalar", (value.dtype.str, self.walk(value.item(), d)))
        # Subclasses of plain types: the base value is taken through the base
        # class's own slots, so overridden methods are never consulted.
        for base, extract in _BASE_EXTRACT:
            if isinstance(value, base):
                return self.tag("foreign", (_type_name(value), self.walk(extract(value), d)))
        items = None
        if self.iterate_opaque:
            try:
                items = [self.walk(v, d) for v in iter(value)]
            except TypeError:
                items = None
        return self.tag("opaque", (_type_name(value), items))


_BASE_EXTRACT: list[tuple[type, Any]] = [
    (int, int.__int__),
    (float, float.__float__),
    (complex, lambda v: complex(complex.real.__get__(v), complex.imag.__get__(v))),
    (str, str.__str__),
    (bytes, lambda v: bytes(bytearray(v))),
    (list, lambda v: list(list.__iter__(v))),
    (tuple, lambda v: tuple(tuple.__iter__(v))),
    (dict, lambda v: dict(dict.items(v))),
    (frozenset, lambda v: frozenset(frozenset.__iter__(v))),
    (set, lambda v: set(set.__iter__(v))),
]


def encode(value: Any, iterate_opaque: bool = False) -> bytes:
    """Encode a value (raises ``ValueError``/``RecursionError`` when it cannot be)."""
    enc = _Encoder(iterate_opaque)
    tree = enc.walk(value)
    return (b"T" if enc.tagged else b"P") + pickle.dumps(tree, protocol=5)


class _PlainUnpickler(pickle.Unpickler):
    """Builds only built-in containers and scalars: every global is refused."""

    def find_class(self, module: str, name: str) -> Any:
        raise pickle.UnpicklingError(f"refused global {module}.{name}")

    def persistent_load(self, pid: Any) -> Any:
        raise pickle.UnpicklingError("refused persistent id")


def is_plain(data: bytes) -> bool:
    """Whether a payload claims to hold no tags (then byte equality implies value equality)."""
    return data[:1] == b"P"


def decode(data: bytes) -> Any:
    """Decode a payload made by :func:`encode` into plain values (``ValueError`` if malformed)."""
    if data[:1] not in (b"P", b"T"):
        raise ValueError("not a codec payload")
    try:
        tree = _PlainUnpickler(io.BytesIO(memoryview(data)[1:])).load()
    except (pickle.UnpicklingError, EOFError, TypeError, AttributeError, IndexError, KeyError, MemoryError) as exc:
        raise ValueError(f"malformed payload: {exc}") from None
    if data[:1] == b"T":
        tree = _untag(tree, 0)
    return tree


def _numpy() -> Any:
    import numpy

    return numpy


def _untag(value: Any, depth: int) -> Any:
    t = type(value)
    if t in _PLAIN_SCALARS:
        return value
    if depth > _MAX_DEPTH:
        raise ValueError("payload nested too deeply")
    d = depth + 1
    if t is list:
        return [_untag(v, d) for v in value]
    if t is dict:
        return {_untag(k, d): _untag(v, d) for k, v in value.items()}
    if t is set or t is frozenset:
        return value  # only scalars travel untagged in sets
    if t is not tuple:
        raise ValueError(f"unexpected {t.__name__} in payload")
    if len(value) == 3 and value[0] == TAG and type(value[0]) is str:
        return _rebuild(value[1], value[2], d)
    return tuple(_untag(v, d) for v in value)


def _rebuild(kind: Any, payload: Any, d: int) -> Any:
    if kind == "set":
        return {_untag(v, d) for v in payload}
    if kind == "frozenset":
        return frozenset(_untag(v, d) for v in payload)
    if kind == "dict":
        return {_untag(k, d): _untag(v, d) for k, v in payload}
    if kind == "complex":
        return complex(float(payload[0]), float(payload[1]))
    if kind == "ndarray":
        np = _numpy()
        dtype, shape, items = payload
        dt = np.dtype(str(dtype))
        items = _untag(items, d)
        if dt.kind in "OV":
            arr = np.empty(len(items), dtype=object)
            arr[:] = items
            return arr
        return np.array(items, dtype=dt).reshape(tuple(int(s) for s in shape))
    if kind == "npscalar":
        np = _numpy()
        dt = np.dtype(str(payload[0]))
        if dt.kind not in "biufc":
            raise ValueError("unsupported numpy scalar")
        return dt.type(_untag(payload[1], d))
    if kind == "foreign":
        type_name, base_value = payload
        base_value = _untag(base_value, d)
        cls = _FOREIGN.get(type(base_value))
        if cls is None:
            return base_value
        out = cls(base_value)
        out.foreign_type = str(type_name)
        return out
    if kind == "opaque":
        type_name, items = payload
        return Opaque(str(type_name), None if items is None else _untag(items, d))
    raise ValueError(f"unknown tag {kind!r}")
