"""Synthetic raw data for the clean benchmark: Japanese note-style articles in alpaca rows, with the
contamination the real scrape had injected at fixed rates (tag lists, URLs, HTML, runaway repetition,
placeholders, unclosed brackets, exact and near duplicates, broken lines). Deterministic for a seed.
"""

from __future__ import annotations

import json
import random
import re
from collections import Counter
from functools import lru_cache
from pathlib import Path

INSTRUCTIONS = ["次の記事本文にふさわしいタイトルを付けてください。", "この文章にnoteのタイトルを付けるとしたら、どんなタイトルにしますか。",
                "以下の記事のタイトルを考えてください。"]
NOUNS = ["ピアノ", "ランニング", "家計簿", "朝活", "読書", "英会話", "筋トレ", "自炊", "キャンプ", "写真", "副業", "育児",
         "転職", "投資", "ヨガ", "日記", "料理", "登山", "語学", "ブログ", "植物", "手帳", "陶芸", "将棋", "散歩", "掃除",
         "節約", "睡眠", "勉強", "資格", "旅行", "カフェ", "サウナ", "釣り", "編み物", "映画", "水泳", "絵本", "弁当", "お菓子作り"]
PLACES = ["京都", "札幌", "福岡", "金沢", "沖縄", "台湾", "ソウル", "近所の公園", "実家", "図書館", "駅前のカフェ", "職場", "山小屋",
          "海辺の町", "商店街", "温泉地", "ベランダ", "市民プール", "古本屋", "パン屋"]
FEELINGS = ["思ったより楽しかった", "少しだけ自信がついた", "意外と続いた", "家族が喜んでくれた", "時間の使い方が変わった",
            "お金の見え方が変わった", "気持ちが軽くなった", "まだ迷っている", "昔の自分に教えたい", "やめなくてよかった"]
# Sentences are assembled from independent parts, so two articles rarely share more than particles and
# endings (5-gram Jaccard between unrelated synthetic articles ~0.01, as between real ones).
OPENERS = ["{n}年前の春、", "先週の土曜日、", "朝起きてすぐに", "仕事帰りに", "子どもが寝たあと、", "雨が続いた{n}月、", "思い切って",
           "友人に誘われて", "なんとなく", "休みの日に", "会社を辞めた翌月、", "{n}歳の誕生日に", "引っ越しを機に", "年末の大掃除で",
           "通勤電車の中で", "夏休みの{n}日目、", "夜中の{n}時ごろ、", "久しぶりに", "月に{n}回だけ", "家族に背中を押されて"]
ACTIONS = ["{place}で{noun}を始めた", "{noun}の道具を{n}千円で揃えた", "{place}まで{noun}をしに出かけた", "{noun}の記録をノートにつけた",
           "{noun}の本を{n}冊まとめて読んだ", "{place}の教室に申し込んだ", "{noun}仲間と{place}に集まった", "{noun}を{n}分だけ試した",
           "{noun}について調べ直した", "{place}で見知らぬ人に{noun}のコツを聞いた", "{noun}の予定を手帳に書き込んだ",
           "{noun}の動画を{n}本見比べた", "{place}で{noun}の体験会に参加した", "{noun}用の棚を組み立てた"]
RESULTS = ["{feeling}。", "結果は{n}点だった。", "思っていたより時間がかかった。", "家族は少しあきれていた。", "次も続けようと決めた。",
           "帰り道の足取りが軽かった。", "あとで{n}回も思い出した。", "正直、最初は{feeling}とは言えなかった。", "財布には痛かった。",
           "写真を{n}枚撮った。", "メモ帳が一冊埋まった。", "誰にも言わずにおいた。", "翌朝は筋肉痛だった。", "{place}の空気が気持ちよかった。"]
TITLES = [
    "{noun}を{n}年続けて、{feeling}", "{place}で{noun}をした週末のこと", "{n}歳で{noun}を始めてみた", "{noun}が続かない私が{n}か月続いた理由",
    "{place}で見つけた、{noun}の楽しみ方", "{noun}をやめようと思った日、{feeling}", "はじめての{noun}｜{place}で{feeling}",
    "月{n}千円でできる{noun}のすすめ", "{noun}のある暮らし、{n}日目の記録",
]
TAGS = ["自己紹介", "子育て", "ワーママ", "30代", "副業", "在宅ワーク", "節約", "家計簿", "貯金", "旅行", "一人旅", "読書", "勉強",
        "資格", "毎日note", "やってみた", "今日の学び", "転職", "キャリア", "ライフログ", "暮らし", "エッセイ"]
TAG_STYLES = [lambda t: "｜".join(t), lambda t: " ".join("#" + x for x in t), lambda t: ", ".join(t), lambda t: "/".join(t),
              lambda t: "・".join(t), lambda t: "、".join(t), lambda t: "".join(f"【{x}】" for x in t)]


def _fill(template: str, rng: random.Random) -> str:
    return template.format(noun=rng.choice(NOUNS), place=rng.choice(PLACES), feeling=rng.choice(FEELINGS),
                           n=rng.randint(2, 99))


SOURCE = Path(__file__).resolve().parents[2] / "data" / "sample" / "source"


@lru_cache(maxsize=1)
def _real_pool() -> tuple[list[str], list[str]]:
    """Sentences and titles of the handwritten sample articles (data/sample/source), when present."""
    sentences, titles = [], []
    for path in sorted(SOURCE.glob("articles_*.jsonl")):
        for line in path.read_text(encoding="utf-8").splitlines():
            row = json.loads(line)
            sentences += [m for m in re.findall(r"[^。！？]+[。！？]", row["body"]) if len(m) >= 8]
            titles.append(row["title"])
    return sentences, titles


def _renumber(text: str, rng: random.Random) -> str:
    return re.sub(r"\d+", lambda m: str(rng.randint(10 ** (len(m.group(0)) - 1), 10 ** len(m.group(0)) - 1)), text)


def article(rng: random.Random) -> tuple[str, str]:
    """A body of 4-7 sentences and a title. Real sentences recombined (with their numbers changed) when the
    sample sources are there, so unrelated bodies share as little as real ones do (5-gram Jaccard ~0.01);
    otherwise sentences assembled from parts."""
    sentences, titles = _real_pool()
    if sentences:
        body = "".join(_renumber(rng.choice(sentences), rng) for _ in range(rng.randint(4, 7)))
        return body, _renumber(rng.choice(titles), rng)
    parts = [_fill(rng.choice(OPENERS) + rng.choice(ACTIONS) + "。" + rng.choice(RESULTS), rng)
             for _ in range(rng.randint(3, 5))]
    return "".join(parts), _fill(rng.choice(TITLES), rng)


def _contaminated_title(kind: str, rng: random.Random, title: str) -> str | None:
    if kind == "tag_list":
        return rng.choice(TAG_STYLES)(rng.sample(TAGS, rng.randint(3, 5)))
    if kind == "url":
        return f"https://note.com/user{rng.randint(1, 9999)}/n/n{rng.randrange(16**8):08x}"
    if kind == "html":
        return f"<p>{title}</p>"
    if kind == "repetition":
        return "「" + "」" * rng.randint(6, 20)
    if kind == "placeholder":
        return rng.choice(["null", "TODO", "タイトル未定", "（タイトル）", "", None])
    return "【" + title  # unclosed bracket


# Share of rows per kind; the rest are clean articles.
RATES = {"tag_list": 0.08, "url": 0.01, "html": 0.01, "repetition": 0.01, "placeholder": 0.015, "unclosed": 0.005,
         "exact_duplicate": 0.05, "near_duplicate": 0.05, "broken_line": 0.01}


def generate(path: Path, n_rows: int, seed: int = 0) -> Counter:
    """Writes `n_rows` JSONL lines to `path`; returns how many of each kind it injected."""
    rng = random.Random(seed)
    kinds, weights = list(RATES) + ["clean"], list(RATES.values()) + [1 - sum(RATES.values())]
    clean_rows: list[dict] = []
    counts: Counter = Counter()
    with path.open("w", encoding="utf-8") as f:
        for _ in range(n_rows):
            kind = rng.choices(kinds, weights)[0]
            if kind in ("exact_duplicate", "near_duplicate") and not clean_rows:
                kind = "clean"
            if kind == "broken_line":
                f.write(rng.choice(["", '{"instruction": "x", "input": "途中で', "[1, 2]"]) + "\n")
            elif kind == "exact_duplicate":
                f.write(json.dumps(rng.choice(clean_rows), ensure_ascii=False) + "\n")
            elif kind == "near_duplicate":
                row = dict(rng.choice(clean_rows))
                row["input"] = row["input"].replace("。", "！", 1) + "最後まで読んでくださり、ありがとうございます。"
                f.write(json.dumps(row, ensure_ascii=False) + "\n")
            else:
                body, title = article(rng)
                output = title if kind == "clean" else _contaminated_title(kind, rng, title)
                row = {"instruction": rng.choice(INSTRUCTIONS), "input": body, "output": output,
                       "category": rng.choice(["hobby", "money", "career", "travel"])}
                if kind == "clean":
                    clean_rows.append(row)
                    if len(clean_rows) > 5000:  # duplicates of recent rows, like a scraper paging twice
                        clean_rows = clean_rows[-2500:]
                f.write(json.dumps(row, ensure_ascii=False) + "\n")
            counts[kind] += 1
    return counts
