"""`finegate import-gguf` on a real GGUF: the tiny base model (with a chat template) converted to F16 by
llama.cpp's own converter, then imported back. The import must tokenize and compute like the model it was
converted from, and carry the chat template; bad files stop it with one line and exit code 2."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from components.common import storage

# Not among import_gguf.verify_texts: the import's own check must not be the only thing proving these.
JAPANESE = [
    "朝の1時間を自分のために",
    "34歳で会社を辞めて、医学部を目指すと決めたとき、周りの反応はほとんどが反対だった。",
    "ちょこちょこ、ちょこちょこ　えっ・・・・・・",
    "ﾊﾝｶｸｶﾅと全角ＡＢＣ、2024年11月30日の記録",
]
CHAT_TEMPLATE = ("{% for m in messages %}<s>{{ m['role'] }}\n{{ m['content'] }}</s>\n{% endfor %}"
                 "{% if add_generation_prompt %}<s>assistant\n{% endif %}")
# The GGUF holds the weights in F16: logits move by about 1e-3 on this model; a wrong tensor moves them by units.
F16_LOGIT_TOLERANCE = 0.05


def finegate(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "pipelines.cli", *args], capture_output=True, text=True)


def the_one_error(r: subprocess.CompletedProcess) -> str:
    """The run's error: exit code 2, no traceback, one `error:` line (progress lines may precede it)."""
    assert r.returncode == 2 and "Traceback" not in r.stderr, r.stderr
    errors = [line for line in r.stderr.splitlines() if line.startswith("finegate import-gguf: error: ")]
    assert len(errors) == 1, r.stderr
    return errors[0]


@pytest.fixture(scope="module")
def tiny_gguf(tmp_path_factory, tiny_base) -> Path:
    """The tiny base model with a chat template, as an F16 GGUF written by llama.cpp's converter."""
    from transformers import AutoTokenizer

    from components.gguf.convert import convert_to_f16

    work = tmp_path_factory.mktemp("tiny_gguf")
    with_template = work / "hf"
    shutil.copytree(tiny_base, with_template)
    tokenizer = AutoTokenizer.from_pretrained(str(with_template))
    tokenizer.chat_template = CHAT_TEMPLATE
    tokenizer.save_pretrained(str(with_template))
    out = work / "model-f16.gguf"
    convert_to_f16(with_template, out, log_path=work / "convert.log")
    return out


@pytest.fixture(scope="module")
def imported(tmp_path_factory, tiny_gguf) -> tuple[Path, dict, str]:
    """(folder, the JSON printed on stdout, stderr) of one real `finegate import-gguf` run."""
    out = tmp_path_factory.mktemp("imported") / "tiny"
    r = finegate("import-gguf", "--gguf", str(tiny_gguf), "--output-dir", str(out))
    assert r.returncode == 0, r.stderr
    return out, json.loads(r.stdout), r.stderr


@pytest.mark.slow
def test_imported_tokenizer_gives_the_original_token_ids(imported, tiny_base):
    from transformers import AutoTokenizer

    original = AutoTokenizer.from_pretrained(str(tiny_base))
    again = AutoTokenizer.from_pretrained(str(imported[0]))
    for text in JAPANESE:
        assert again(text)["input_ids"] == original(text)["input_ids"], text
        assert again.decode(again(text)["input_ids"], skip_special_tokens=True) == text


@pytest.mark.slow
def test_imported_model_computes_the_original_logits(imported, tiny_base):
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(tiny_base))
    original = AutoModelForCausalLM.from_pretrained(str(tiny_base)).eval()
    again = AutoModelForCausalLM.from_pretrained(str(imported[0]), use_safetensors=True).eval()
    with torch.no_grad():
        for text in JAPANESE:
            ids = torch.tensor([tokenizer(text)["input_ids"]])
            diff = (again(ids).logits - original(ids).logits).abs().max().item()
            assert diff < F16_LOGIT_TOLERANCE, (text, diff)


@pytest.mark.slow
def test_folder_holds_safetensors_config_and_the_gguf_chat_template(imported):
    from transformers import AutoTokenizer

    out = imported[0]
    assert (out / "model.safetensors").is_file() and not list(out.glob("*.bin"))
    assert (out / "config.json").is_file() and (out / "generation_config.json").is_file()
    tokenizer = AutoTokenizer.from_pretrained(str(out))
    assert tokenizer.chat_template == CHAT_TEMPLATE
    rendered = tokenizer.apply_chat_template([{"role": "user", "content": "本文"}], add_generation_prompt=True,
                                             tokenize=False)
    assert rendered == "<s>user\n本文</s>\n<s>assistant\n"


@pytest.mark.slow
def test_import_record_names_the_source_and_its_checks(imported, tiny_gguf, tiny_base):
    from transformers import AutoModelForCausalLM

    out, printed, stderr = imported
    record = json.loads((out / "import_gguf.json").read_text(encoding="utf-8"))
    assert {k: v for k, v in printed.items() if k != "output"} == record
    assert record["sha256"] == storage.sha256_file(tiny_gguf)
    assert record["architecture"] == "llama" and record["tokenizer_type"] == "llama"
    assert record["parameters"] == AutoModelForCausalLM.from_pretrained(str(tiny_base)).num_parameters()
    assert record["chat_template"] is True
    check = record["verification"]
    assert check["token_ids_match_llama_cpp"] and check["chat_template_carried"]
    assert check["texts"] == 5  # the four default texts and the first one as a chat prompt
    assert check["max_abs_logit_diff"] <= 1e-3
    assert "import-gguf: verifying" in stderr


@pytest.mark.slow
def test_import_reads_and_writes_s3_with_sha256(tiny_gguf, s3_bucket, tmp_path):
    storage.upload_file(tiny_gguf, f"s3://{s3_bucket}/in/model.gguf")
    r = finegate("import-gguf", "--gguf", f"s3://{s3_bucket}/in/model.gguf", "--output-dir", f"s3://{s3_bucket}/hf",
                 "--dtype", "bfloat16")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["dtype"] == "bfloat16"
    local = storage.localize(f"s3://{s3_bucket}/hf", tmp_path)
    assert {p.name for p in local.iterdir()} >= {"model.safetensors", "config.json", "tokenizer.json",
                                                 "chat_template.jinja", "import_gguf.json"}
    head = storage.s3_client().head_object(Bucket=s3_bucket, Key="hf/model.safetensors")
    assert head["Metadata"]["sha256"] == storage.sha256_file(local / "model.safetensors")
    assert json.loads((local / "config.json").read_text())["dtype"] == "bfloat16"


def test_a_file_that_is_not_gguf_is_refused_in_one_line(tmp_path):
    not_gguf = tmp_path / "model.gguf"
    not_gguf.write_text('{"this": "is json, not GGUF"}\n')
    r = finegate("import-gguf", "--gguf", str(not_gguf), "--output-dir", str(tmp_path / "out"))
    assert "not a GGUF file" in the_one_error(r)
    assert r.stdout == "" and not (tmp_path / "out").exists()


@pytest.mark.slow
def test_a_truncated_gguf_is_refused_in_one_line(tiny_gguf, tmp_path):
    cut = tmp_path / "cut.gguf"
    cut.write_bytes(tiny_gguf.read_bytes()[: tiny_gguf.stat().st_size // 2])
    r = finegate("import-gguf", "--gguf", str(cut), "--output-dir", str(tmp_path / "out"))
    assert "truncated GGUF" in the_one_error(r)
    assert not (tmp_path / "out").exists()


def test_an_architecture_transformers_cannot_load_is_refused_in_one_line(tmp_path):
    import gguf
    import numpy as np

    path = tmp_path / "rwkv.gguf"
    writer = gguf.GGUFWriter(str(path), "rwkv6")
    writer.add_block_count(1)
    writer.add_tokenizer_model("rwkv")
    writer.add_token_list(["<s>", "a", "b"])
    writer.add_tensor("token_embd.weight", np.zeros((3, 32), dtype=np.float32))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    r = finegate("import-gguf", "--gguf", str(path), "--output-dir", str(tmp_path / "out"))
    assert "architecture 'rwkv6' is not supported" in the_one_error(r)
    assert not (tmp_path / "out").exists()


def test_a_folder_that_is_not_an_earlier_import_is_not_replaced(tmp_path):
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "notes.txt").write_text("mine")
    r = finegate("import-gguf", "--gguf", str(tmp_path / "missing.gguf"), "--output-dir", str(tmp_path / "out"))
    assert "is not an earlier import" in the_one_error(r)
    assert (tmp_path / "out" / "notes.txt").read_text() == "mine"
