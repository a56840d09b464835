"""A tiny SentencePiece Llama for the gguf tests, bench.gguf and the gguf image check.

Real parts only: a SentencePiece model trained on the records below, a LlamaForCausalLM whose hidden and
intermediate sizes are multiples of 256 (k-quants need whole 256-wide rows), briefly trained on the same
texts so its next-token distributions are peaked like a real model's, saved with `tokenizer.model` kept
in the folder (llama.cpp's converter reads it). Not the session's `tiny_base`: this one is a train output
built in seconds from 16 records with its own held-out splits, so it needs no session fixture (the image
check and the benchmark run without pytest's).
"""

from __future__ import annotations

import shutil
from pathlib import Path

from tests.fixtures.tiny_llama import fit, save_merged, tiny_llama

TEMPLATE = "### 指示\n{prompt}\n\n### タイトル\n"

# (article, title): short held-out style records, in the prompt/completion shape the split stage writes.
RECORDS = [
    ("小学生のころにやめたピアノを四十歳で再開した。毎晩十五分だけ鍵盤に触れると頭がほどけていく。", "四十歳でピアノを再開して半年"),
    ("週末に近所の山を歩くようになった。朝の空気と鳥の声で、一週間の疲れが抜けていく。", "週末の山歩きで疲れが抜けた話"),
    ("在宅勤務が続き、机と椅子を見直した。腰の痛みが減り、午後の集中も戻ってきた。", "在宅勤務の机を見直したら腰が楽になった"),
    ("毎朝のコーヒーを豆から挽くことにした。香りで目が覚め、朝の時間が少し好きになった。", "豆から挽くコーヒーで朝が好きになった"),
    ("子どもと一緒に図書館へ通い始めた。借りる本を選ぶ時間が親子の会話を増やしてくれた。", "親子で図書館に通って会話が増えた"),
    ("家計簿をアプリに変えて三か月。使いみちが見えるだけで無駄な買い物が自然と減った。", "家計簿アプリで無駄な買い物が減った"),
    ("ベランダで小さな家庭菜園を始めた。ミニトマトが赤くなる朝は、それだけで少しうれしい。", "ベランダ菜園のミニトマトがくれた小さな喜び"),
    ("転職して一年がたった。慣れない仕事に戸惑ったが、聞く力が一番の武器だと気づいた。", "転職して一年、聞く力が武器になった"),
    ("夜のスマホをやめて紙の本を読むようにした。寝つきが良くなり、朝の目覚めも軽い。", "夜のスマホをやめて紙の本にした結果"),
    ("休日に一人でカフェをめぐる。知らない店の扉を開けるたびに、小さな冒険をしている気分になる。", "一人カフェめぐりは小さな冒険"),
    ("祖母の味を思い出して煮物を作った。分量はわからないが、台所に立つと記憶がよみがえる。", "祖母の煮物を思い出しながら作った日"),
    ("朝の散歩を一か月続けた。歩数よりも、季節の変化に気づけるようになったことがうれしい。", "朝の散歩を一か月続けて気づいたこと"),
    ("古いカメラを修理して街を撮り歩いた。フィルムの一枚一枚を大切にするようになった。", "古いカメラで街を撮り歩いた週末"),
    ("毎日十分の英語日記を始めた。間違いを気にせず書くうちに、言葉が少しずつ出てくるようになった。", "十分の英語日記で言葉が出てくるようになった"),
    ("押し入れを片づけて使わない物を手放した。部屋が広くなり、気持ちまで軽くなった。", "押し入れを片づけたら気持ちが軽くなった"),
    ("近所の銭湯に通い始めた。大きな湯船と常連さんとの会話が、一日の終わりの楽しみになった。", "銭湯通いが一日の終わりの楽しみになった"),
]
N_TRAIN = 10  # the model learns these; val and test (the rest) stay unseen, as held-out records should


def write_splits(data_dir: Path) -> Path:
    """val.jsonl and test.jsonl as the split stage writes them (id, source_line, prompt, completion)."""
    from tests.fixtures.stage_outputs import write_splits as write_split_output

    rows = [{"id": f"r{i}", "source_line": i + 1, "prompt": a, "completion": t} for i, (a, t) in enumerate(RECORDS)]
    return write_split_output(data_dir, rows[:N_TRAIN], rows[N_TRAIN:N_TRAIN + 3], rows[N_TRAIN + 3:])


def build_tiny_llama_dir(path: Path, steps: int = 40, seed: int = 0) -> Path:
    """The model saved as the merged/ folder `path` of a train output (sealed), as gguf reads it."""
    import sentencepiece as spm
    from transformers import LlamaTokenizer

    path.mkdir(parents=True, exist_ok=True)
    texts = [TEMPLATE.format(prompt=a) + t for a, t in RECORDS]
    corpus = path.parent / "sp_corpus.txt"
    corpus.write_text("\n".join(texts * 4) + "\n", encoding="utf-8")
    spm.SentencePieceTrainer.train(input=str(corpus), model_prefix=str(path.parent / "sp"), vocab_size=384,
                                   model_type="unigram", character_coverage=1.0, hard_vocab_limit=False,
                                   pad_id=0, unk_id=1, bos_id=2, eos_id=3, user_defined_symbols=["\n"],
                                   remove_extra_whitespaces=False, minloglevel=2, num_threads=1)
    shutil.copy(path.parent / "sp.model", path / "tokenizer.model")
    tokenizer = LlamaTokenizer.from_pretrained(str(path), add_bos_token=True, add_eos_token=False,
                                               pad_token="<pad>")
    model = tiny_llama(tokenizer, hidden_size=256, intermediate_size=512, max_positions=256, seed=seed)
    # The tokenizer saw every text (as a base model's would); the model learns only the train records.
    ids = [tokenizer(t)["input_ids"] + [tokenizer.eos_token_id] for t in texts[:N_TRAIN]]
    fit(model, [(x, x) for x in ids], tokenizer.pad_token_id, steps, lr=3e-3)
    return save_merged(model, tokenizer, path, TEMPLATE)
