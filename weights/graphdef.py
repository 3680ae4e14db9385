"""Just enough of TensorFlow's GraphDef protobuf to read Lucid's Const nodes, in pure Python.

A `.pb` GraphDef is a protobuf message; reading it needs neither TensorFlow nor the
protobuf package (nor tensorboard's copies of TensorFlow's protos): the wire format is
a sequence of (field number, wire type, value) records, and only these fields matter
(numbers from tensorflow/core/framework/*.proto):

- GraphDef: ``node = 1`` (NodeDef, repeated).
- NodeDef: ``name = 1``, ``op = 2``, ``attr = 5`` (map<string, AttrValue>: entries with
  ``key = 1``, ``value = 2``).
- AttrValue: ``tensor = 8`` (TensorProto).
- TensorProto: ``dtype = 1``, ``tensor_shape = 2``, ``tensor_content = 4`` (raw
  little-endian bytes), ``float_val = 5``, ``double_val = 6`` (packed or not).
- TensorShapeProto: ``dim = 2`` (Dim: ``size = 1``).

As in TensorFlow's ``make_ndarray``: a tensor with `tensor_content` is those bytes; a
tensor given by a shorter `float_val` list is filled with its last value (a Const
of one repeated value is stored as one number), and one with no values is zeros.

Example:
    >>> consts = read_float_consts(bytes(graphdef_for_doctest()))
    >>> consts["w"].tolist()
    [[1.5, 1.5]]
"""

from __future__ import annotations

import struct
from typing import Iterator

import numpy as np

__all__ = ["GraphDefError", "read_float_consts", "iter_fields"]

# TensorFlow DataType enum values of the floating-point types.
_FLOAT_DTYPES = {1: np.float32, 2: np.float64, 19: np.float16}


class GraphDefError(ValueError):
    """Bytes that are not a well-formed GraphDef (truncated, corrupt or another format)."""


def _varint(buf: bytes, i: int) -> tuple[int, int]:
    shift = value = 0
    while True:
        if i >= len(buf):
            raise GraphDefError("truncated varint")
        b = buf[i]
        i += 1
        value |= (b & 0x7F) << shift
        if not b & 0x80:
            return value, i
        shift += 7
        if shift > 63:
            raise GraphDefError("varint longer than 10 bytes")


def iter_fields(buf: bytes) -> Iterator[tuple[int, int, object]]:
    """(field number, wire type, value) of each record: an int (varint, fixed) or bytes."""
    i, n = 0, len(buf)
    while i < n:
        key, i = _varint(buf, i)
        field, wire = key >> 3, key & 7
        if field == 0:
            raise GraphDefError("field number 0")
        if wire == 0:
            value, i = _varint(buf, i)
        elif wire == 1:
            if i + 8 > n:
                raise GraphDefError("truncated 64-bit field")
            value, i = buf[i : i + 8], i + 8
        elif wire == 2:
            size, i = _varint(buf, i)
            if i + size > n:
                raise GraphDefError(f"field {field} runs {i + size - n} bytes past the end")
            value, i = buf[i : i + size], i + size
        elif wire == 5:
            if i + 4 > n:
                raise GraphDefError("truncated 32-bit field")
            value, i = buf[i : i + 4], i + 4
        else:
            raise GraphDefError(f"wire type {wire} (groups or an unknown type): not a GraphDef")
        yield field, wire, value


def _shape(buf: bytes) -> tuple[int, ...]:
    dims = []
    for f, w, v in iter_fields(buf):
        if f == 2 and w == 2:
            size = 0
            for f2, w2, v2 in iter_fields(v):
                if f2 == 1 and w2 == 0:
                    size = v2 - (1 << 64) if v2 >= 1 << 63 else v2  # int64
            dims.append(size)
    return tuple(dims)


def _tensor(buf: bytes, name: str) -> np.ndarray | None:
    """A float TensorProto as an array; None for other dtypes."""
    dtype, shape, content = None, (), None
    vals: list[float] = []
    for f, w, v in iter_fields(buf):
        if f == 1 and w == 0:
            dtype = v
        elif f == 2 and w == 2:
            shape = _shape(v)
        elif f == 4 and w == 2:
            content = v
        elif f == 5:  # float_val: packed (wire 2) or one fixed32 per record (wire 5)
            vals.extend(struct.unpack(f"<{len(v) // 4}f", v) if w == 2 else struct.unpack("<f", v))
        elif f == 6:  # double_val
            vals.extend(struct.unpack(f"<{len(v) // 8}d", v) if w == 2 else struct.unpack("<d", v))
    if dtype not in _FLOAT_DTYPES:
        return None
    np_dtype = np.dtype(_FLOAT_DTYPES[dtype]).newbyteorder("<")
    if any(d < 0 for d in shape):
        raise GraphDefError(f"Const {name!r} has an unknown dimension in its shape {shape}")
    count = int(np.prod(shape, dtype=np.int64)) if shape else 1
    if content is not None:
        if len(content) != count * np_dtype.itemsize:
            raise GraphDefError(
                f"Const {name!r}: tensor_content holds {len(content)} bytes, its shape {list(shape)} needs "
                f"{count * np_dtype.itemsize}"
            )
        return np.frombuffer(content, dtype=np_dtype).astype(np_dtype.newbyteorder("="), copy=True).reshape(shape)
    if len(vals) > count:
        raise GraphDefError(f"Const {name!r}: {len(vals)} values for shape {list(shape)}")
    out = np.zeros(count, dtype=np_dtype.newbyteorder("="))
    if vals:
        out[: len(vals)] = vals
        out[len(vals) :] = vals[-1]
    return out.reshape(shape)


def read_float_consts(data: bytes) -> dict[str, np.ndarray]:
    """Every floating-point Const node of a serialized GraphDef, by node name."""
    out: dict[str, np.ndarray] = {}
    for f, w, node in iter_fields(data):
        if f != 1 or w != 2:
            continue
        name, op, value = "", "", None
        for f2, w2, v2 in iter_fields(node):
            if f2 == 1 and w2 == 2:
                name = v2.decode("utf-8", "replace")
            elif f2 == 2 and w2 == 2:
                op = v2.decode("utf-8", "replace")
            elif f2 == 5 and w2 == 2:  # one attr map entry
                key, attr = None, None
                for f3, w3, v3 in iter_fields(v2):
                    if f3 == 1 and w3 == 2:
                        key = v3.decode("utf-8", "replace")
                    elif f3 == 2 and w3 == 2:
                        attr = v3
                if key == "value" and attr is not None:
                    value = attr
        if op != "Const" or value is None:
            continue
        tensor = next((v for f3, w3, v in iter_fields(value) if f3 == 8 and w3 == 2), None)
        if tensor is None:
            continue
        a = _tensor(tensor, name)
        if a is not None:
            out[name] = a
    return out


def _field(number: int, wire: int, payload: bytes | int) -> bytes:
    """One record (for the doctest's tiny graph; the library only reads)."""

    def varint(v: int) -> bytes:
        out = bytearray()
        while True:
            b, v = v & 0x7F, v >> 7
            out.append(b | (0x80 if v else 0))
            if not v:
                return bytes(out)

    head = varint(number << 3 | wire)
    if wire == 0:
        return head + varint(int(payload))
    return head + varint(len(payload)) + bytes(payload)


def graphdef_for_doctest() -> bytes:
    """A GraphDef with one Const "w" of shape [1, 2] stored as a single float_val 1.5."""
    dim = _field(2, 2, _field(1, 0, 1)) + _field(2, 2, _field(1, 0, 2))
    tensor = _field(1, 0, 1) + _field(2, 2, dim) + _field(5, 2, struct.pack("<f", 1.5))
    attr = _field(1, 2, b"value") + _field(2, 2, _field(8, 2, tensor))
    node = _field(1, 2, b"w") + _field(2, 2, b"Const") + _field(5, 2, attr)
    return _field(1, 2, node)
