"""A GGUF is validated before llama.cpp opens it: malformed or truncated files are refused with a clear error."""

from __future__ import annotations

import struct
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from components.common.storage import sha256_file
from components.gguf.header import MalformedGGUF, check_header

REPO = Path(__file__).resolve().parents[2]
TENSOR_COUNT_AT, KV_COUNT_AT, FIRST_KEY_LENGTH_AT = 8, 16, 24  # GGUF v3: magic, version, two u64 counts


@pytest.fixture
def small_gguf(tmp_path) -> Path:
    """A valid GGUF written by the gguf package: two metadata entries besides the architecture, two tensors."""
    import gguf

    path = tmp_path / "small.gguf"
    writer = gguf.GGUFWriter(str(path), "llama")
    writer.add_name("small")
    writer.add_uint32("small.answer", 42)
    writer.add_tensor("a.weight", np.arange(4 * 32, dtype=np.float32).reshape(4, 32))
    writer.add_tensor("b.weight", np.ones(64, dtype=np.float16))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path


def patch_bytes(path: Path, offset: int, data: bytes) -> Path:
    raw = bytearray(path.read_bytes())
    raw[offset:offset + len(data)] = data
    path.write_bytes(bytes(raw))
    return path


def test_well_formed_file_is_read_with_its_counts_metadata_and_sha256(small_gguf):
    header = check_header(small_gguf)
    assert (header.version, header.tensor_count, header.kv_count) == (3, 2, 3)
    assert header.metadata["general.architecture"] == "llama"
    assert header.metadata["general.name"] == "small"
    assert header.tensor_types == {"F16": 1, "F32": 1}
    assert header.data_offset + header.data_bytes <= header.file_bytes
    assert header.sha256 == sha256_file(small_gguf)


def test_bad_magic_is_refused(small_gguf):
    patch_bytes(small_gguf, 0, b"GGML")
    with pytest.raises(MalformedGGUF, match="bad magic .*not a GGUF file"):
        check_header(small_gguf)


@pytest.mark.parametrize("version", [0, 1, 4, 0x03000000])
def test_unsupported_version_is_refused(small_gguf, version):
    patch_bytes(small_gguf, 4, struct.pack("<I", version))
    with pytest.raises(MalformedGGUF, match=f"GGUF version {version} is not supported"):
        check_header(small_gguf)


@pytest.mark.parametrize("offset", [TENSOR_COUNT_AT, KV_COUNT_AT])
@pytest.mark.parametrize("count", [2**63 + 5, 2**40, 10_000])
def test_absurd_tensor_or_metadata_count_is_refused_before_reading_on(small_gguf, offset, count):
    patch_bytes(small_gguf, offset, struct.pack("<Q", count))
    with pytest.raises(MalformedGGUF, match="more than a .*-byte file can hold"):
        check_header(small_gguf)


def test_string_length_past_the_end_is_refused(small_gguf):
    patch_bytes(small_gguf, FIRST_KEY_LENGTH_AT, struct.pack("<Q", 2**40))
    with pytest.raises(MalformedGGUF, match="only .* remain"):
        check_header(small_gguf)


def test_file_truncated_inside_tensor_data_is_refused(small_gguf):
    raw = small_gguf.read_bytes()
    small_gguf.write_bytes(raw[:-40])
    with pytest.raises(MalformedGGUF, match="truncated GGUF: the header declares"):
        check_header(small_gguf)


def test_file_truncated_inside_header_is_refused(small_gguf):
    raw = small_gguf.read_bytes()
    small_gguf.write_bytes(raw[:raw.index(b"b.weight") + 3])  # cut in the middle of a tensor name
    with pytest.raises(MalformedGGUF, match="truncated or corrupted"):
        check_header(small_gguf)


def test_bytes_beyond_the_declared_tensor_data_are_refused(small_gguf):
    small_gguf.write_bytes(small_gguf.read_bytes() + b"\0" * 4096)
    with pytest.raises(MalformedGGUF, match="4096 bytes after the last tensor"):
        check_header(small_gguf)


def test_unknown_tensor_type_is_refused(small_gguf):
    raw = small_gguf.read_bytes()
    # The tensor table entry for "b.weight": name, n_dims=1, dim=64, then its ggml type (F16 = 1).
    entry = raw.index(b"b.weight") + len(b"b.weight")
    patch_bytes(small_gguf, entry + 4 + 8, struct.pack("<I", 9999))
    with pytest.raises(MalformedGGUF, match="tensor 'b.weight' has unknown ggml type 9999"):
        check_header(small_gguf)


def test_tensor_offsets_out_of_order_are_refused(small_gguf):
    raw = small_gguf.read_bytes()
    entry = raw.index(b"b.weight") + len(b"b.weight")
    patch_bytes(small_gguf, entry + 4 + 8 + 4, struct.pack("<Q", 0))  # b.weight claims a.weight's data
    with pytest.raises(MalformedGGUF, match="tensor 'b.weight' has data offset 0, expected"):
        check_header(small_gguf)


def test_malformed_file_never_reaches_llama_cpp(small_gguf):
    """Opening goes through the header check first: llama.cpp is not even imported for a truncated file."""
    small_gguf.write_bytes(small_gguf.read_bytes()[:-40])
    script = (
        "import sys\n"
        "from components.gguf.settings import GgufSection\n"
        "from components.gguf.header import MalformedGGUF\n"
        "from components.gguf.runtime import open_gguf\n"
        "try:\n"
        f"    with open_gguf({str(small_gguf)!r}, GgufSection()):\n"
        "        print('opened')\n"
        "except MalformedGGUF as exc:\n"
        "    print('refused:', exc)\n"
        "print('llama_cpp imported:', 'llama_cpp' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True,
                         cwd=REPO).stdout
    assert "refused:" in out and "truncated GGUF" in out
    assert "llama_cpp imported: False" in out
