"""The heavy commands (train, hf-check, gguf, evaluate, make-tiny-base) meet garbage model folders, GGUF files,
corpora and split folders: only their input validation runs (no folder here holds a loadable model, so
nothing trains or converts), and it must keep the contract of tests/fuzz/sandbox.py."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.fuzz.garbage import JSON_VALUES, SETS, dumps, jsonl, kept_rows
from tests.fuzz.sandbox import Sandbox

FEW = settings(max_examples=12, deadline=None, suppress_health_check=list(HealthCheck))
LLAMA_CONFIG = {"architectures": ["LlamaForCausalLM"], "model_type": "llama", "hidden_size": 256,
                "intermediate_size": 512, "num_hidden_layers": 2, "num_attention_heads": 4, "vocab_size": 1000}


@st.composite
def model_folder(draw) -> dict[str, bytes] | bytes | None:
    """A model folder's files (name -> bytes), a plain file where the folder belongs (bytes), or nothing."""
    kind = draw(st.sampled_from(["folder", "folder", "folder", "file", "missing"]))
    if kind == "file":
        return draw(st.binary(max_size=50))
    if kind == "missing":
        return None
    config = st.one_of(st.builds(lambda k, v: dumps({**LLAMA_CONFIG, k: v}), st.sampled_from(sorted(LLAMA_CONFIG)),
                                 JSON_VALUES), st.just(dumps(LLAMA_CONFIG)), JSON_VALUES.map(dumps), st.binary(max_size=40))
    header = st.builds(lambda h: len(h).to_bytes(8, "little") + h, JSON_VALUES.map(dumps))
    weights = st.one_of(st.binary(max_size=64), header, st.just((2**40).to_bytes(8, "little") + b"{}"))
    files = {"config.json": config, "model.safetensors": weights, "tokenizer.json": JSON_VALUES.map(dumps),
             "tokenizer_config.json": JSON_VALUES.map(dumps), "tokenizer.model": st.binary(max_size=40),
             "generation_config.json": JSON_VALUES.map(dumps)}
    chosen = draw(st.lists(st.sampled_from(sorted(files)), unique=True, max_size=len(files)))
    return {name: draw(files[name]) for name in chosen}


def place_model(box: Sandbox, model) -> object:
    if model is None:
        return box.inputs / "no-such-model"
    if isinstance(model, bytes):
        return box.write("model", model)
    (box.inputs / "model").mkdir()
    for name, data in model.items():
        box.write(f"model/{name}", data)
    return box.inputs / "model"


@st.composite
def split_folder(draw) -> dict[str, bytes]:
    """Most often a good split folder, so that the model folder is what the command meets next."""
    if draw(st.integers(0, 2)):
        return {f"{name}.jsonl": b"".join(dumps(draw(kept_rows(i))) + b"\n" for i in range(4))
                for name in ("train", "val", "test")}
    names = draw(st.lists(st.sampled_from(["train", "val", "test"]), unique=True, min_size=0, max_size=3))
    return {f"{name}.jsonl": draw(jsonl(kept_rows, max_rows=6)) for name in names}


def place_splits(box: Sandbox, splits: dict[str, bytes]) -> object:
    (box.inputs / "split").mkdir()
    for name, data in splits.items():
        box.write(f"split/{name}", data)
    return box.inputs / "split"


@FEW
@given(model=model_folder(), splits=split_folder(), sets=SETS)
def test_train_validates_garbage_without_training(model, splits, sets):
    with Sandbox() as box:
        box.run("train", "--data-dir", place_splits(box, splits), "--base-model", place_model(box, model),
                "--output-dir", box.out, "--set", "train.max_steps=1", *sets)


@FEW
@given(model=model_folder(), splits=split_folder(), sets=SETS)
def test_hf_check_validates_garbage_without_generating(model, splits, sets):
    with Sandbox() as box:
        box.run("hf-check", "--model-dir", place_model(box, model), "--data-dir", place_splits(box, splits),
                "--output-dir", box.out, *sets)


@settings(max_examples=5, deadline=None, suppress_health_check=list(HealthCheck))
@given(model=model_folder(), splits=split_folder(), sets=SETS)
def test_gguf_validates_garbage_without_converting(model, splits, sets):
    with Sandbox() as box:
        box.run("gguf", "--model-dir", place_model(box, model), "--data-dir", place_splits(box, splits),
                "--output-dir", box.out, *sets)


@st.composite
def gguf_bytes(draw) -> bytes:
    """Random bytes, the GGUF magic and a version before garbage, or a real tiny GGUF cut short or bit-flipped."""
    kind = draw(st.sampled_from(["random", "magic", "real"]))
    if kind == "random":
        return draw(st.binary(max_size=80))
    if kind == "magic":
        return b"GGUF" + draw(st.sampled_from([b"\x03\x00\x00\x00", b"\x02\x00\x00\x00", b"\xff\xff\xff\xff"])) + \
            draw(st.binary(max_size=80))
    data = bytearray(tiny_gguf())
    cut = draw(st.integers(0, len(data)))
    if cut < len(data) and draw(st.booleans()):
        data[cut] ^= 0xFF
        return bytes(data)
    return bytes(data[:cut])


_TINY_GGUF: list[bytes] = []


def tiny_gguf() -> bytes:
    if not _TINY_GGUF:
        import tempfile
        from pathlib import Path

        from tests.register.run_dirs import write_tiny_gguf

        with tempfile.TemporaryDirectory() as tmp:
            write_tiny_gguf(Path(tmp) / "m.gguf")
            _TINY_GGUF.append((Path(tmp) / "m.gguf").read_bytes())
    return _TINY_GGUF[0]


@FEW
@given(gguf=st.one_of(st.none(), gguf_bytes()), splits=split_folder(), base=model_folder(), sets=SETS)
def test_evaluate_validates_garbage_gguf_and_splits(gguf, splits, base, sets):
    with Sandbox() as box:
        path = box.inputs / "missing.gguf" if gguf is None else box.write("model.gguf", gguf)
        box.run("evaluate", "--gguf-dir", path, "--data-dir", place_splits(box, splits), "--output-dir", box.out,
                "--base-model", place_model(box, base), *sets)


@settings(max_examples=6, deadline=None, suppress_health_check=list(HealthCheck))
@given(corpus=st.one_of(st.none(), st.just(b""), st.just(b"\n \n"), st.binary(min_size=1, max_size=40).map(lambda b: b"\xff" + b),
                        st.builds(lambda v: b'{"text": "ok"}\n' + v, st.sampled_from([b"{broken", b'{"n": ' + b"1" * 5000 + b"}"]))),
       sets=SETS)
def test_make_tiny_base_refuses_garbage_corpora(corpus, sets):
    """Only corpora it must refuse: a readable one would start a (short) pre-training run."""
    with Sandbox() as box:
        path = box.inputs / "missing.jsonl" if corpus is None else box.write("corpus.jsonl", corpus)
        result = box.run("make-tiny-base", "--corpus", path, "--output-dir", box.out / "tiny", *sets)
        assert result.code == 2, result.stderr

