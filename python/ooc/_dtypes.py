"""Data types, spelled the way dataframe users know them (``ooc.Int64``, ``ooc.Decimal(15, 2)``)."""

from __future__ import annotations

import re
from typing import Union


class DataType:
    """Base class of ooc's data types. Use the class (``ooc.Int64``) or an instance."""

    _name = ""

    def _engine_name(self) -> str:
        return self._name

    def __eq__(self, other: object) -> bool:
        if isinstance(other, type) and issubclass(other, DataType):
            return type(self) is other
        return type(self) is type(other) and self._engine_name() == other._engine_name()

    def __hash__(self) -> int:
        return hash(self._engine_name())

    def __repr__(self) -> str:
        return type(self).__name__


class Boolean(DataType):
    _name = "bool"


class Int8(DataType):
    _name = "int8"


class Int16(DataType):
    _name = "int16"


class Int32(DataType):
    _name = "int32"


class Int64(DataType):
    _name = "int64"


class UInt8(DataType):
    _name = "uint8"


class UInt16(DataType):
    _name = "uint16"


class UInt32(DataType):
    _name = "uint32"


class UInt64(DataType):
    _name = "uint64"


class Float32(DataType):
    _name = "float32"


class Float64(DataType):
    _name = "float64"


class String(DataType):
    _name = "str"


Utf8 = String


class Date(DataType):
    _name = "date"


class Null(DataType):
    _name = "null"


class Datetime(DataType):
    """A timestamp without time zone; ``time_unit`` is ``"us"`` (default), ``"ms"`` or ``"ns"``."""

    def __init__(self, time_unit: str = "us") -> None:
        if time_unit not in ("s", "ms", "us", "ns"):
            raise ValueError(f"time_unit must be 's', 'ms', 'us' or 'ns', not {time_unit!r}")
        self.time_unit = time_unit

    def _engine_name(self) -> str:
        return f"datetime[{self.time_unit}]"

    def __repr__(self) -> str:
        return f"Datetime(time_unit={self.time_unit!r})"


class Decimal(DataType):
    """An exact decimal with ``precision`` digits, ``scale`` of them after the point."""

    def __init__(self, precision: int = 38, scale: int = 0) -> None:
        self.precision = precision
        self.scale = scale

    def _engine_name(self) -> str:
        return f"decimal({self.precision},{self.scale})"

    def __repr__(self) -> str:
        return f"Decimal(precision={self.precision}, scale={self.scale})"


DataTypeLike = Union[DataType, "type[DataType]", str]


def engine_name(dtype: DataTypeLike) -> str:
    """The engine's name for ``dtype`` (a class, an instance or a string such as ``"int64"``)."""
    if isinstance(dtype, str):
        return dtype
    if isinstance(dtype, type) and issubclass(dtype, DataType):
        if dtype is Decimal:
            raise TypeError("Decimal needs a precision and scale: ooc.Decimal(15, 2)")
        if dtype is Datetime:
            return "datetime[us]"
        return dtype._name
    if isinstance(dtype, DataType):
        return dtype._engine_name()
    raise TypeError(f"not a data type: {dtype!r}")


_SIMPLE = {
    cls.__name__: cls
    for cls in (
        Boolean, Int8, Int16, Int32, Int64, UInt8, UInt16, UInt32, UInt64,
        Float32, Float64, String, Date, Null,
    )
}


def from_engine_name(name: str) -> DataType:
    """The dtype instance for a name the engine reports (``"Decimal(15, 2)"``, ``"Int64"``)."""
    if name in _SIMPLE:
        return _SIMPLE[name]()
    m = re.fullmatch(r"Decimal\((\d+), (-?\d+)\)", name)
    if m:
        return Decimal(int(m.group(1)), int(m.group(2)))
    m = re.fullmatch(r"Datetime\((\w+)\)", name)
    if m:
        return Datetime(m.group(1))
    return _Other(name)


class _Other(DataType):
    """A type ooc passes through but has no Python class for (lists, structs, ...)."""

    def __init__(self, name: str) -> None:
        self._name = name

    def __repr__(self) -> str:
        return self._name
