"""A strict check of a GGUF file's header before anything hands the file to llama.cpp.

llama.cpp's GGUF parser has had memory-safety bugs on malformed files (huge counts, lengths past the end,
overflowing shapes), so a file is read here first, in Python, with every count and length bounded by the
bytes actually left in the file. Only a file whose header parses completely, whose tensor table is
consistent and whose size matches the tensor data it declares is ever loaded. The rules mirror
ggml/src/gguf.cpp (versions 2-3, duplicate keys and tensor names refused, names < 64 bytes, at most 4
dimensions, rows a multiple of the type's block size, offsets laid out back to back at the alignment).
"""

from __future__ import annotations

import struct
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

from gguf.constants import (
    GGML_QUANT_SIZES,
    GGUF_DEFAULT_ALIGNMENT,
    GGUF_MAGIC,
    GGMLQuantizationType,
    GGUFValueType,
)

from components.common.errors import InputError
from components.common.storage import sha256_file

SUPPORTED_VERSIONS = (2, 3)
MAX_DIMS = 4  # GGML_MAX_DIMS
MAX_TENSOR_NAME = 64  # GGML_MAX_NAME, including the terminating NUL
# Smallest possible encodings, used to bound counts by the bytes left in the file before reading them.
MIN_KV_BYTES = 8 + 1 + 4 + 1  # key length, one key byte, value type, a one-byte value
MIN_TENSOR_INFO_BYTES = 8 + 1 + 4 + 8 + 4 + 8  # name length, one name byte, n_dims, one dim, type, offset
_SCALARS: dict[GGUFValueType, str] = {
    GGUFValueType.UINT8: "<B", GGUFValueType.INT8: "<b", GGUFValueType.UINT16: "<H", GGUFValueType.INT16: "<h",
    GGUFValueType.UINT32: "<I", GGUFValueType.INT32: "<i", GGUFValueType.FLOAT32: "<f", GGUFValueType.BOOL: "<?",
    GGUFValueType.UINT64: "<Q", GGUFValueType.INT64: "<q", GGUFValueType.FLOAT64: "<d",
}
# Metadata kept in the report as values; arrays (the vocabulary) are summarized by type and length.
_REPORTED_KEYS = ("general.architecture", "general.name", "general.file_type", "general.quantization_version",
                  "general.alignment", "tokenizer.ggml.model", "tokenizer.ggml.bos_token_id",
                  "tokenizer.ggml.eos_token_id")


class MalformedGGUF(InputError):
    """The file is not a well-formed GGUF; it is refused before llama.cpp ever opens it."""


@dataclass
class GGUFHeader:
    path: str
    version: int
    tensor_count: int
    kv_count: int
    alignment: int
    data_offset: int
    data_bytes: int
    file_bytes: int
    metadata: dict[str, Any] = field(default_factory=dict)
    tensor_types: dict[str, int] = field(default_factory=dict)
    sha256: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"path": self.path, "sha256": self.sha256, "file_bytes": self.file_bytes, "version": self.version,
                "tensor_count": self.tensor_count, "kv_count": self.kv_count, "alignment": self.alignment,
                "data_offset": self.data_offset, "data_bytes": self.data_bytes, "metadata": self.metadata,
                "tensor_types": self.tensor_types}


class _BoundedReader:
    """Reads little-endian fields; any read past the end of the file is a MalformedGGUF, never a short read."""

    def __init__(self, f: BinaryIO, size: int, path: Path):
        self.f, self.size, self.path = f, size, path

    @property
    def pos(self) -> int:
        return self.f.tell()

    @property
    def left(self) -> int:
        return self.size - self.pos

    def fail(self, what: str) -> MalformedGGUF:
        return MalformedGGUF(f"{self.path}: malformed GGUF at byte {self.pos}: {what}; the file is refused "
                             "(re-run the conversion, or check the copy is complete)")

    def take(self, n: int, what: str) -> bytes:
        if n < 0 or n > self.left:
            raise self.fail(f"{what} needs {n} bytes but only {self.left} remain (truncated or corrupted)")
        return self.f.read(n)

    def skip(self, n: int, what: str) -> None:
        if n < 0 or n > self.left:
            raise self.fail(f"{what} needs {n} bytes but only {self.left} remain (truncated or corrupted)")
        self.f.seek(n, 1)

    def unpack(self, fmt: str, what: str) -> Any:
        return struct.unpack(fmt, self.take(struct.calcsize(fmt), what))[0]

    def string(self, what: str, max_len: int | None = None) -> str:
        n = self.unpack("<Q", f"{what} length")
        if max_len is not None and n >= max_len:
            raise self.fail(f"{what} is {n} bytes long, the limit is {max_len - 1}")
        raw = self.take(n, what)
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError:
            raise self.fail(f"{what} is not valid UTF-8") from None


def _value_type(r: _BoundedReader, raw: int, what: str) -> GGUFValueType:
    try:
        return GGUFValueType(raw)
    except ValueError:
        raise r.fail(f"{what} has unknown value type {raw}") from None


def _read_value(r: _BoundedReader, vtype: GGUFValueType, key: str) -> Any:
    if vtype in _SCALARS:
        return r.unpack(_SCALARS[vtype], f"value of '{key}'")
    if vtype == GGUFValueType.STRING:
        return r.string(f"value of '{key}'")
    item_type = _value_type(r, r.unpack("<I", f"array type of '{key}'"), f"array '{key}'")
    count = r.unpack("<Q", f"array length of '{key}'")
    if item_type == GGUFValueType.ARRAY:
        raise r.fail(f"array '{key}' nests arrays, which GGUF does not allow")
    if item_type == GGUFValueType.STRING:
        if count * 8 > r.left:
            raise r.fail(f"array '{key}' declares {count} strings, more than the file can hold")
        for i in range(count):
            r.string(f"item {i} of '{key}'")
    else:
        r.skip(count * struct.calcsize(_SCALARS[item_type]), f"array '{key}' of {count} items")
    return {"array": item_type.name, "length": count}


def _tensor_nbytes(r: _BoundedReader, name: str, dims: list[int], ggml_type: int) -> int:
    try:
        qtype = GGMLQuantizationType(ggml_type)
        block, type_size = GGML_QUANT_SIZES[qtype]
    except (ValueError, KeyError):
        raise r.fail(f"tensor '{name}' has unknown ggml type {ggml_type}") from None
    if dims[0] % block:
        raise r.fail(f"tensor '{name}' ({qtype.name}) has {dims[0]} elements per row, not a multiple of {block}")
    n_elements = 1
    for d in dims:
        n_elements *= d
    if n_elements >= 2**63:
        raise r.fail(f"tensor '{name}' shape {dims} overflows 64-bit element counts")
    return n_elements // block * type_size


def check_header(path: str | Path, with_sha256: bool = True) -> GGUFHeader:
    """Parses and validates the whole header and tensor table of a GGUF file; raises MalformedGGUF."""
    p = Path(path)
    if not p.is_file():
        raise InputError(f"{p}: no such GGUF file")
    size = p.stat().st_size
    with p.open("rb") as f:
        r = _BoundedReader(f, size, p)
        magic = r.unpack("<I", "magic")
        if magic != GGUF_MAGIC:
            raise r.fail(f"bad magic {struct.pack('<I', magic)!r}, expected b'GGUF' (not a GGUF file)")
        version = r.unpack("<I", "version")
        if version not in SUPPORTED_VERSIONS:
            raise r.fail(f"GGUF version {version} is not supported (only {list(SUPPORTED_VERSIONS)})")
        tensor_count = r.unpack("<Q", "tensor count")
        kv_count = r.unpack("<Q", "metadata count")
        if kv_count * MIN_KV_BYTES + tensor_count * MIN_TENSOR_INFO_BYTES > r.left:
            raise r.fail(f"header declares {tensor_count} tensors and {kv_count} metadata entries, "
                         f"more than a {size}-byte file can hold")

        metadata: dict[str, Any] = {}
        seen_keys: set[str] = set()
        for i in range(kv_count):
            key = r.string(f"key of metadata entry {i}")
            if key in seen_keys:
                raise r.fail(f"duplicate metadata key '{key}'")
            seen_keys.add(key)
            vtype = _value_type(r, r.unpack("<I", f"type of '{key}'"), f"metadata '{key}'")
            value = _read_value(r, vtype, key)
            if key in _REPORTED_KEYS:
                metadata[key] = value
            if key == "general.alignment" and vtype != GGUFValueType.UINT32:
                raise r.fail(f"general.alignment has type {vtype.name}, expected UINT32")

        alignment = metadata.get("general.alignment", GGUF_DEFAULT_ALIGNMENT)
        if alignment <= 0 or alignment & (alignment - 1):
            raise r.fail(f"alignment {alignment} is not a power of 2")

        tensors: list[tuple[str, int, int]] = []
        names: set[str] = set()
        types: Counter[str] = Counter()
        for i in range(tensor_count):
            name = r.string(f"name of tensor {i}", max_len=MAX_TENSOR_NAME)
            if name in names:
                raise r.fail(f"duplicate tensor name '{name}'")
            names.add(name)
            n_dims = r.unpack("<I", f"dimension count of '{name}'")
            if n_dims > MAX_DIMS:
                raise r.fail(f"tensor '{name}' has {n_dims} dimensions, at most {MAX_DIMS} are allowed")
            dims = [r.unpack("<q", f"dimension {j} of '{name}'") for j in range(n_dims)] or [1]
            if any(d < 0 for d in dims):
                raise r.fail(f"tensor '{name}' has a negative dimension {dims}")
            ggml_type = r.unpack("<I", f"type of '{name}'")
            nbytes = _tensor_nbytes(r, name, dims, ggml_type)
            offset = r.unpack("<Q", f"data offset of '{name}'")
            tensors.append((name, offset, nbytes))
            types[GGMLQuantizationType(ggml_type).name] += 1

        data_offset = _pad(r.pos, alignment) if tensor_count else r.pos
        expected = 0
        for name, offset, nbytes in tensors:
            if offset != expected:
                raise MalformedGGUF(f"{p}: malformed GGUF: tensor '{name}' has data offset {offset}, expected "
                                    f"{expected} (tensor table corrupted); the file is refused")
            expected += _pad(nbytes, alignment)
        data_end = data_offset + (tensors[-1][1] + tensors[-1][2] if tensors else 0)
        padded_end = data_offset + expected
        if size < data_end:
            raise MalformedGGUF(f"{p}: truncated GGUF: the header declares {data_end} bytes of header and tensor "
                                f"data but the file has {size}; the file is refused (re-run the conversion or "
                                "re-copy the file)")
        if size > max(padded_end, data_end):
            raise MalformedGGUF(f"{p}: malformed GGUF: {size - max(padded_end, data_end)} bytes after the last "
                                "tensor's data that the header does not declare; the file is refused")

    header = GGUFHeader(path=str(p), version=version, tensor_count=tensor_count, kv_count=kv_count,
                        alignment=alignment, data_offset=data_offset, data_bytes=data_end - data_offset,
                        file_bytes=size, metadata=metadata, tensor_types=dict(sorted(types.items())))
    if with_sha256:
        header.sha256 = sha256_file(p)
    return header


def _pad(n: int, alignment: int) -> int:
    return (n + alignment - 1) // alignment * alignment
