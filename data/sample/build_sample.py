#!/usr/bin/env python3
"""Builds the sample datasets under data/sample/ from the handwritten articles in data/sample/source/.

    python data/sample/build_sample.py

Deterministic (fixed seeds, standard library only). Reads every data/sample/source/articles_*.jsonl
(sorted by file name; `source_index` below is the 0-based position of an article in that concatenation)
and writes:

    note_titles.jsonl            alpaca rows {instruction, input, output, category, group}: clean rows mixed
                                 with the contamination a scraped note.com dataset really had
    note_titles.labels.jsonl     ground truth, one line per row in the same order:
                                 {line, kind, detail, source_index, duplicate_of}
    v1_replay.jsonl              638 alpaca rows {instruction, input, output} reproducing the failed v1 run
    v1_replay.labels.jsonl       its ground truth
    README.md                    what the files are and their composition

kind is one of clean, tag_list, exact_duplicate, near_duplicate, incomplete, noise. A duplicate is always
the later of the two rows (duplicate_of is the 1-based line of the clean row it copies), so "keep the
first occurrence" is the right behaviour.
"""

from __future__ import annotations

import json
import random
import re
import unicodedata
from collections import Counter
from pathlib import Path

HERE = Path(__file__).resolve().parent
SOURCE_DIR = HERE / "source"

NOTE_SEED = 20240611
V1_SEED = 638
V1_ROWS = 638

# Share of each kind in note_titles.jsonl; the rest are clean rows. The dataset has int(1.5 * articles) rows,
# so two source files (~545 articles) give ~817 rows and one file gives about half that.
NOTE_MIX = {"tag_list": 0.28, "exact_duplicate": 0.05, "near_duplicate": 0.05, "incomplete": 0.04, "noise": 0.04}
# v1: 28% tag lists and some duplicates, nothing else.
V1_MIX = {"tag_list": 0.28, "exact_duplicate": 0.05, "near_duplicate": 0.03}

KINDS = ("clean", "tag_list", "exact_duplicate", "near_duplicate", "incomplete", "noise")

INSTRUCTIONS = [
    "次の記事本文にふさわしいタイトルを付けてください。",
    "以下のnote記事の本文を読んで、タイトルを1つ考えてください。",
    "この文章にnoteのタイトルを付けるとしたら、どんなタイトルにしますか。",
    "記事の内容が伝わる、読みたくなるタイトルを提案してください。",
]
V1_INSTRUCTION = INSTRUCTIONS[0]


# ----------------------------------------------------------------------------- text helpers
def dedup_key(text: str) -> str:
    """Same definition as components/common/text.dedup_key: NFKC, control/zero-width characters removed,
    all white space removed, case folded. Exact duplicates share this key; near duplicates do not."""
    text = unicodedata.normalize("NFKC", text)
    text = re.sub(r"[\u0000-\u001f\u007f-\u009f\u200b-\u200f\u2028\u2029\u2060\ufeff]", " ", text)
    return re.sub(r"\s+", "", text).casefold()


def ngrams(text: str, n: int = 5) -> set[str]:
    t = dedup_key(text)
    return {t[i:i + n] for i in range(max(1, len(t) - n + 1))}


def jaccard(a: str, b: str) -> float:
    x, y = ngrams(a), ngrams(b)
    return len(x & y) / max(1, len(x | y))


def sentences(body: str) -> list[str]:
    """Splits after 。！？ that are not inside 『』/「」."""
    out, depth, start = [], 0, 0
    for i, ch in enumerate(body):
        if ch in "『「":
            depth += 1
        elif ch in "』」":
            depth = max(0, depth - 1)
        elif ch in "。！？" and depth == 0:
            out.append(body[start:i + 1])
            start = i + 1
    if body[start:]:
        out.append(body[start:])
    return out


def to_fullwidth_ascii(text: str) -> str:
    return "".join(chr(ord(c) + 0xFEE0) if ("0" <= c <= "9" or "A" <= c <= "Z" or "a" <= c <= "z") else c for c in text)


def _halfwidth_kana_map() -> dict[str, str]:
    table = {}
    for cp in range(0xFF66, 0xFF9E):
        h = chr(cp)
        table[unicodedata.normalize("NFKC", h)] = h
    for full in list(table):
        for mark, hmark in (("\u3099", "\uff9e"), ("\u309a", "\uff9f")):
            composed = unicodedata.normalize("NFC", full + mark)
            if len(composed) == 1:
                table[composed] = table[full] + hmark
    return table


HALFWIDTH_KANA = _halfwidth_kana_map()


def to_halfwidth_kana(text: str) -> str:
    return "".join(HALFWIDTH_KANA.get(c, c) for c in text)


# ----------------------------------------------------------------------------- tag vocabulary
CATEGORY_TAGS = {
    "career": ["転職", "キャリア", "仕事", "働き方", "会社員", "仕事術", "はたらく"],
    "parenting": ["子育て", "育児", "ワーママ", "子育て日記", "育児日記", "パパ育児", "ママ"],
    "money": ["お金", "節約", "家計簿", "貯金", "投資", "家計管理", "資産形成"],
    "health": ["健康", "ダイエット", "メンタルヘルス", "睡眠", "運動", "セルフケア", "体調管理"],
    "side_business": ["副業", "在宅ワーク", "ブログ", "副収入", "複業", "個人で稼ぐ", "スキルアップ"],
    "hobby": ["趣味", "大人の趣味", "休日の過ごし方", "好きなこと", "推し活", "ハンドメイド"],
    "travel": ["旅行", "一人旅", "国内旅行", "旅", "おでかけ", "旅の記録"],
    "food": ["料理", "グルメ", "レシピ", "自炊", "おうちごはん", "食べ歩き"],
    "learning": ["勉強", "資格", "読書", "学び", "独学", "勉強法", "大人の学び直し"],
    "lifestyle": ["暮らし", "ライフスタイル", "日常", "丁寧な暮らし", "ミニマリスト", "習慣化"],
}
PERSONA_TAGS = {
    "career": ["30代", "40代", "アラサー", "女性", "会社員"],
    "parenting": ["ワーママ", "ママ", "パパ", "30代", "共働き"],
    "money": ["主婦", "30代", "共働き", "一人暮らし", "会社員"],
    "health": ["40代", "アラフォー", "30代", "女性"],
    "side_business": ["主婦", "会社員", "ワーママ", "30代", "在宅"],
}
GENERIC_TAGS = ["自己紹介", "日記", "エッセイ", "毎日note", "note初心者", "つぶやき", "振り返り", "最近の学び",
                "コラム", "ライフログ", "熟成下書き", "今日の学び", "私の仕事", "やってみた", "体験談"]
# (needle in body or title, tag)
KEYWORD_TAGS = [
    ("転職", "転職"), ("営業", "営業"), ("エンジニア", "エンジニア"), ("管理職", "管理職"), ("リモート", "リモートワーク"),
    ("在宅勤務", "在宅勤務"), ("フリーランス", "フリーランス"), ("育休", "育休"), ("面接", "面接"), ("残業", "残業"),
    ("退職", "退職"), ("派遣", "派遣社員"), ("看護師", "看護師"), ("上司", "人間関係"), ("後輩", "後輩指導"),
    ("簿記", "簿記"), ("介護", "介護"), ("移住", "移住"), ("保育園", "保育園"), ("保活", "保活"),
    ("イヤイヤ期", "イヤイヤ期"), ("離乳食", "離乳食"), ("双子", "双子育児"), ("反抗期", "反抗期"),
    ("発達障害", "発達障害"), ("ワンオペ", "ワンオペ育児"), ("小学", "小学生"), ("中学", "中学生"), ("PTA", "PTA"),
    ("弁当", "お弁当"), ("シングル", "シングル"), ("ひとり親", "ひとり親"), ("NISA", "新NISA"), ("iDeCo", "iDeCo"),
    ("ふるさと納税", "ふるさと納税"), ("家計簿", "家計簿"), ("保険", "保険見直し"), ("固定費", "固定費"),
    ("確定申告", "確定申告"), ("奨学金", "奨学金"), ("株", "株式投資"), ("ポイ活", "ポイ活"),
    ("キャッシュレス", "キャッシュレス"), ("相続", "相続"), ("FIRE", "FIRE"), ("ダイエット", "ダイエット"),
    ("体重", "ダイエット記録"), ("睡眠", "睡眠"), ("寝つき", "睡眠"), ("ランニング", "ランニング"), ("筋トレ", "筋トレ"),
    ("ヨガ", "ヨガ"), ("腰痛", "腰痛"), ("禁煙", "禁煙"), ("更年期", "更年期"), ("休職", "休職"),
    ("適応障害", "適応障害"), ("パニック", "パニック障害"), ("サウナ", "サウナ"), ("花粉", "花粉症"),
    ("健康診断", "健康診断"), ("人間ドック", "人間ドック"), ("ストレッチ", "ストレッチ"), ("Webライター", "Webライター"),
    ("ライター", "ライター"), ("ブログ", "ブログ"), ("ハンドメイド", "ハンドメイド"), ("minne", "minne"),
    ("フリマ", "フリマアプリ"), ("動画編集", "動画編集"), ("Kindle", "Kindle出版"), ("イラスト", "イラスト"),
    ("ストックフォト", "ストックフォト"), ("ポッドキャスト", "ポッドキャスト"), ("ココナラ", "ココナラ"),
    ("せどり", "せどり"), ("スタンプ", "LINEスタンプ"), ("翻訳", "翻訳"), ("プログラミング", "プログラミング"),
    ("Instagram", "SNS運用"), ("ピアノ", "ピアノ"), ("一眼", "カメラ"), ("フィルムカメラ", "フィルムカメラ"), ("写真", "写真"), ("陶芸", "陶芸"),
    ("模型", "鉄道模型"), ("推し", "推し活"), ("読書", "読書"), ("京都", "京都"), ("北海道", "北海道"),
    ("沖縄", "沖縄"), ("奈良", "奈良"), ("ひとり旅", "ひとり旅"), ("一人旅", "一人旅"), ("温泉", "温泉"),
    ("海外", "海外旅行"), ("キャンプ", "キャンプ"), ("カフェ", "カフェ巡り"), ("ラーメン", "ラーメン"),
    ("パン作り", "パン作り"), ("パンを焼", "パン作り"), ("餃子", "餃子"), ("レシピ", "レシピ"), ("自炊", "自炊"), ("TOEIC", "TOEIC"),
    ("英語", "英語"), ("漢検", "漢検"), ("Excel", "Excel"), ("ミニマリスト", "ミニマリスト"), ("片付け", "片付け"),
    ("犬の散歩", "犬のいる暮らし"), ("柴犬", "犬"), ("猫", "猫"), ("朝活", "朝活"), ("植物", "観葉植物"), ("掃除", "掃除"),
    ("登山", "登山"), ("山登り", "登山"), ("鉄道", "鉄道"), ("映画", "映画"), ("ドラマ", "ドラマ"), ("コーヒー", "コーヒー"),
]


def pick_tags(art: dict, rng: random.Random, k: int) -> list[str]:
    text = art["body"] + art["title"]
    cat = art["category"]
    hits = []
    for needle, tag in KEYWORD_TAGS:
        if needle in text and tag not in hits:
            hits.append(tag)
    m = re.search(r"(\d{2})歳", text)
    ages = [f"{int(m.group(1)) // 10 * 10}代"] if m and 20 <= int(m.group(1)) < 70 else []
    base = CATEGORY_TAGS.get(cat, ["日記"])
    persona = PERSONA_TAGS.get(cat, [])
    tags: list[str] = [rng.choice(base)]
    rng.shuffle(hits)
    pools = [hits[:3], ages, rng.sample(base, len(base)), rng.sample(persona, len(persona)),
             rng.sample(GENERIC_TAGS, len(GENERIC_TAGS))]
    order = [0, 1, 0, 2, 3, 4, 0, 2, 3, 4] if rng.random() < 0.7 else [4, 0, 2, 1, 3, 0, 2, 4]
    for p in order:
        for t in pools[p]:
            if t not in tags:
                tags.append(t)
                break
        if len(tags) >= k:
            break
    if rng.random() < 0.5:
        first = tags.pop(0)
        tags.insert(rng.randrange(len(tags) + 1), first)
    return tags[:k]


TAG_STYLES = [  # (name, weight)
    ("fullwidth_bar", 20), ("halfwidth_bar", 8), ("hashtags", 17), ("comma", 9), ("touten", 9), ("slash", 7),
    ("nakaguro", 6), ("spaces", 6), ("brackets", 4), ("mixed", 6), ("title_plus_tags", 6), ("keyword_label", 2),
]


def render_tags(art: dict, rng: random.Random) -> tuple[str, str]:
    style = rng.choices([s for s, _ in TAG_STYLES], weights=[w for _, w in TAG_STYLES])[0]
    k = rng.choices([2, 3, 4, 5, 6], weights=[6, 30, 34, 20, 10])[0]
    if k == 2 and style not in ("hashtags", "slash", "comma", "fullwidth_bar", "brackets"):
        k = 3
    tags = pick_tags(art, rng, k)
    sep = ""
    if style == "fullwidth_bar":
        sep = rng.choice(["｜", "｜", " ｜ ", "｜ "])
        out = sep.join(tags)
    elif style == "halfwidth_bar":
        out = rng.choice(["|", " | ", " |"]).join(tags)
    elif style == "hashtags":
        mark = rng.choice(["#", "#", "#", "＃"])
        sep = rng.choice([" ", " ", "\u3000", "", "  "])
        out = sep.join(mark + t for t in tags)
    elif style == "comma":
        sep = rng.choice([", ", ",", "，", " , "])
        out = sep.join(tags)
    elif style == "touten":
        sep = rng.choice(["、", "、", "、 "])
        out = sep.join(tags)
    elif style == "slash":
        out = rng.choice(["/", " / ", "／"]).join(tags)
    elif style == "nakaguro":
        sep = rng.choice(["・", "・", "･"])
        out = sep.join(tags)
    elif style == "spaces":
        out = rng.choice([" ", "\u3000"]).join(tags)
    elif style == "brackets":
        out = "".join(f"【{t}】" for t in tags) if rng.random() < 0.7 else " ".join(f"[{t}]" for t in tags)
    elif style == "mixed":
        a, b = tags[: len(tags) // 2 + 1], tags[len(tags) // 2 + 1:] or [rng.choice(GENERIC_TAGS)]
        pattern = rng.randrange(4)
        if pattern == 0:
            out = " ".join("#" + t for t in a) + "｜" + "｜".join(b)
        elif pattern == 1:
            out = "、".join(a) + " / " + " / ".join(b)
        elif pattern == 2:
            out = "・".join(a) + "｜" + "・".join(b)
        else:
            out = ", ".join(a) + " #" + " #".join(b)
    elif style == "title_plus_tags":
        # A title with the article's tags tacked on: the scraper concatenated the title and tag chips.
        title = art["title"].split("｜")[0]
        tags = tags if len(tags) >= 3 else tags + [rng.choice(GENERIC_TAGS)]
        sep = rng.choice(["｜", "|", " | "])
        out = title + sep + sep.join(tags)
    else:  # keyword_label
        out = rng.choice(["タグ：", "キーワード：", "tags: "]) + rng.choice(["、", ", ", " "]).join(tags)
    if sep and rng.random() < 0.06:
        out += sep.strip()  # a trailing separator, as scraped
    return out, f"tag list, style={style}, {len(tags)} tags"


# ----------------------------------------------------------------------------- duplicates
def exact_variant(row: dict, rng: random.Random) -> tuple[dict, str]:
    """A copy that differs only in what dedup_key normalizes away (or not at all)."""
    r = dict(row)
    options = ["identical", "identical", "trailing_space", "fullwidth_space", "line_breaks", "fullwidth_ascii",
               "halfwidth_kana"]
    for _ in range(10):
        v = rng.choice(options)
        if v == "identical":
            break
        if v == "trailing_space":
            r["output"] = r["output"] + rng.choice([" ", "\u3000", "\n", "  "])
            if rng.random() < 0.5:
                r["input"] = r["input"] + "\n"
            break
        if v == "fullwidth_space":
            r["output"] = "\u3000" + r["output"]
            r["input"] = r["input"].replace("。", "。\u3000", 1)
            break
        if v == "line_breaks":
            r["input"] = r["input"].replace("。", "。\n", rng.choice([1, 2, 99]))
            if r["input"].endswith("\n"):
                r["input"] = r["input"][:-1]
            break
        if v == "fullwidth_ascii" and re.search(r"[0-9A-Za-z]", row["input"] + row["output"]):
            r["input"] = to_fullwidth_ascii(r["input"])
            r["output"] = to_fullwidth_ascii(r["output"])
            break
        if v == "halfwidth_kana" and re.search(r"[\u30a1-\u30fa]", row["output"]):
            r["output"] = to_halfwidth_kana(r["output"])
            break
    else:
        v = "identical"
    assert dedup_key(r["input"]) == dedup_key(row["input"]) and dedup_key(r["output"]) == dedup_key(row["output"])
    return r, v


BODY_SWAPS = [
    ("けれど", "けど"), ("思う。", "思います。"), ("いまは", "今は"), ("今は", "いまは"), ("ちょっと", "少し"),
    ("本当に", "ほんとうに"), ("分かった", "わかった"), ("わかった", "分かった"), ("気がする", "気がします"),
    ("私は", "わたしは"), ("僕は", "ぼくは"), ("たぶん", "多分"), ("一番", "いちばん"), ("いちばん", "一番"),
    ("とても", "すごく"), ("でも、", "でも"), ("ただ、", "ただ"), ("結局、", "結局"), ("正直、", "正直に言うと、"),
    ("ので", "から"), ("だった。", "でした。"), ("ている。", "てる。"), ("しまった。", "しまいました。"),
]
PARTICLE_SWAPS = [(r"(?<=[一-龥ァ-ヴー])が(?=[一-龥ぁ-ゔ])", "は"), (r"(?<=[一-龥ァ-ヴー])は(?=[一-龥ァ-ヴ、])", "が"),
                  (r"(?<=[一-龥ァ-ヴー])を(?=[一-龥ぁ-ゔ])", "も"), (r"(?<=[一-龥ァ-ヴー])に(?=[行向])", "へ")]
APPENDED = ["最後まで読んでくださり、ありがとうございます。", "今日はここまで。", "続きはまた書きます。",
            "（追記：誤字を直しました）", "スキやコメント、励みになります。", "同じような人の参考になればうれしいです。"]
PREPENDED = ["※以前の記事を加筆修正しました。", "【再掲】", "（下書きから発掘した文章です）"]


def _edit_body(body: str, rng: random.Random) -> tuple[str, str]:
    op = rng.choices(["swap", "particle", "append", "prepend", "punct", "drop_comma", "drop_last"],
                     weights=[30, 15, 20, 8, 10, 10, 7])[0]
    if op == "swap":
        cands = [(a, b) for a, b in BODY_SWAPS if a in body]
        if cands:
            a, b = rng.choice(cands)
            starts = [m.start() for m in re.finditer(re.escape(a), body)]
            i = rng.choice(starts)
            return body[:i] + b + body[i + len(a):], f"'{a}'->'{b}'"
        op = "append"
    if op == "particle":
        for pat, rep in rng.sample(PARTICLE_SWAPS, len(PARTICLE_SWAPS)):
            ms = list(re.finditer(pat, body))
            if ms:
                m = rng.choice(ms)
                return body[:m.start()] + rep + body[m.end():], f"particle '{m.group(0)}'->'{rep}'"
        op = "append"
    if op == "punct":
        ends = [m.start() for m in re.finditer("。", body)][:-1]
        if ends:
            i = rng.choice(ends)
            return body[:i] + "！" + body[i + 1:], "'。'->'！'"
        op = "append"
    if op == "drop_comma":
        commas = [m.start() for m in re.finditer("、", body)]
        if commas:
            i = rng.choice(commas)
            return body[:i] + body[i + 1:], "dropped a '、'"
        op = "append"
    if op == "drop_last":
        ss = sentences(body)
        if len(ss) >= 4:
            return "".join(ss[:-1]), "dropped the last sentence"
        op = "append"
    if op == "prepend":
        return rng.choice(PREPENDED) + body, "prepended a note"
    return body + rng.choice(APPENDED), "appended a sentence"


def _edit_title(title: str, rng: random.Random) -> tuple[str, str]:
    op = rng.choice(["bang", "comma", "prefix", "suffix", "kanji_number", "swap"])
    if op == "kanji_number":
        m = re.search(r"(?<!\d)([1-9])(?=(年|か月|つ|回|日|人|冊|本|社|点)(?!\d))", title)
        if m:
            kanji = "〇一二三四五六七八九"[int(m.group(1))]
            return title[:m.start()] + kanji + title[m.end():], f"'{m.group(1)}'->'{kanji}'"
        op = "bang"
    if op == "comma":
        if "、" in title:
            i = title.index("、")
            return title[:i] + title[i + 1:], "title: dropped '、'"
        op = "swap"
    if op == "swap":
        cands = [(a, b) for a, b in [("私", "わたし"), ("わたし", "私"), ("一番", "いちばん"), ("分かった", "わかった"),
                                      ("話", "はなし"), ("だった", "でした"), ("こと", "事"), ("子ども", "子供")] if a in title]
        if cands:
            a, b = rng.choice(cands)
            return title.replace(a, b, 1), f"title: '{a}'->'{b}'"
        op = "bang"
    if op == "prefix":
        return rng.choice(["【再掲】", "【加筆】"]) + title, "title: added a prefix"
    if op == "suffix":
        return title + rng.choice(["（追記あり）", "（再掲）"]), "title: added a suffix"
    if title[-1] in "！？!?。」』】）":
        return title + "…" if title[-1] not in "…" else title[:-1], "title: punctuation"
    return title + rng.choice(["！", "。", "…"]), "title: punctuation"


def near_variant(row: dict, rng: random.Random) -> tuple[dict, str]:
    for _ in range(20):
        r = dict(row)
        edits = []
        r["input"], e = _edit_body(row["input"], rng)
        edits.append(e)
        if rng.random() < 0.3:
            r["input"], e = _edit_body(r["input"], rng)
            edits.append(e)
        if rng.random() < 0.6:
            r["output"], e = _edit_title(row["output"], rng)
            edits.append(e)
        sim = jaccard(r["input"], row["input"])
        if dedup_key(r["input"]) != dedup_key(row["input"]) and sim >= 0.72:
            return r, f"{'; '.join(edits)}; input 5-gram jaccard {sim:.2f}"
    raise RuntimeError("could not make a near duplicate")


# ----------------------------------------------------------------------------- incomplete & noise
def _cut_mid_sentence(body: str, rng: random.Random) -> str:
    for _ in range(20):
        i = rng.randrange(int(len(body) * 0.35), int(len(body) * 0.75))
        if body[i - 1] not in "。！？、」』" and body[i] not in "。！？、」』":
            return body[:i]
    return body[: len(body) // 2]


def make_incomplete(art: dict, rng: random.Random, which: str) -> tuple[str | None, str | None, str]:
    """Returns (input, output, detail)."""
    body, title = art["body"], art["title"]
    if which == "empty_output":
        return body, "", "empty output"
    if which == "whitespace_output":
        return body, rng.choice([" ", "\u3000", "\n", "  \u3000"]), "whitespace-only output"
    if which == "null_output":
        return body, None, "output is null"
    if which == "null_string":
        return body, rng.choice(["null", "None", "NULL"]), "output is the string null/None"
    if which == "todo":
        return body, rng.choice(["TODO", "todo", "TODO: タイトル考える", "TBD"]), "TODO placeholder"
    if which == "undecided":
        return body, rng.choice(["タイトル未定", "（タイトル）", "無題", "「タイトル未定」", "タイトル"]), "title placeholder"
    if which == "unclosed_bracket":
        if title.startswith("【") and "】" in title:
            out = title[: title.index("】")] + title[title.index("】") + 1:]
        elif "「" in title and "」" in title:
            out = title[: title.rindex("」")]
        else:
            head = re.split(r"[、｜]", title)[0]
            out = "【" + head if rng.random() < 0.6 else "【" + rng.choice(["保存版", "体験談", "実録", "初心者向け"]) + " " + head
        return body, out, "unclosed bracket in output"
    if which == "dangling_separator":
        if "｜" in title:
            out = title.split("｜")[0] + "｜"
        elif "、" in title:
            out = title[: title.index("、") + 1]
        else:
            cut = len(title) * 2 // 3
            while cut < len(title) - 1 and not re.match(r"[ぁ-ゔ][一-龥ァ-ヴ]", title[cut - 1:cut + 1]):
                cut += 1
            out = title[:cut] + rng.choice(["｜", " |", "／"])
        return body, out, "output cut at a separator"
    if which == "cut_body":
        return _cut_mid_sentence(body, rng), rng.choice(["", "", " "]), "body cut mid-sentence, empty output"
    if which == "empty_input":
        return rng.choice(["", " ", "\n"]), title, "empty input with a title"
    if which == "null_input":
        return None, title, "input is null"
    raise ValueError(which)


INCOMPLETE_KINDS = ["empty_output", "whitespace_output", "null_output", "null_string", "todo", "undecided",
                    "unclosed_bracket", "dangling_separator", "cut_body", "cut_body", "empty_input", "null_input"]


def _hex(rng: random.Random, n: int) -> str:
    return "".join(rng.choice("0123456789abcdef") for _ in range(n))


USERS = ["mika_writes", "tanaka_note", "hana0312", "yuki_kurashi", "ken_fukugyo", "sora_log", "mama_nikki",
         "office_worker42", "kotoha", "riku_money"]


def make_noise(art: dict, rng: random.Random, which: str) -> tuple[str, str]:
    title = art["title"]
    if which == "url_only":
        out = rng.choice([
            f"https://note.com/{rng.choice(USERS)}/n/n{_hex(rng, 12)}",
            f"https://note.com/{rng.choice(USERS)}/n/n{_hex(rng, 12)}?magazine_key=m{_hex(rng, 12)}",
            f"note.com/{rng.choice(USERS)}/n/n{_hex(rng, 12)}",
        ])
        if out.startswith("note.com"):
            out = "https://" + out if rng.random() < 0.5 else "www." + out
        return out, "url instead of a title"
    if which == "title_with_url":
        return f"{title} https://note.com/{rng.choice(USERS)}/n/n{_hex(rng, 12)}", "title followed by its url"
    if which == "html":
        out = rng.choice([f"<b>{title}</b>", f"<h1>{title}</h1>", f"{title}<br>", f'<span class="title">{title}</span>',
                          f"<p>{title}</p>", f'<a href="/n/n{_hex(rng, 12)}">{title}</a>',
                          title.replace("、", "&nbsp;", 1) if "、" in title else f"{title}&nbsp;"])
        return out, "html markup in output"
    if which == "markdown":
        return rng.choice([f"# {title}", f"**{title}**", f"## {title}"]), "markdown in output"
    if which == "bracket_run":
        n = rng.randint(5, 14)
        out = rng.choice(["「" + "」" * n, "」" * n, title[: rng.randint(3, 8)] + "」" * n, "【" + "】" * n])
        return out, "runaway repetition of a bracket"
    if which == "char_run":
        out = rng.choice([title + "！" * rng.randint(5, 9), title[: rng.randint(4, 9)] + "ー" * rng.randint(6, 12),
                          "。" * rng.randint(6, 10), title[:6] + "…" * rng.randint(6, 10)])
        return out, "runaway repetition of a character"
    if which == "phrase_run":
        words = re.findall(r"[一-龥ぁ-んァ-ヴー]{2,5}", title)
        w = rng.choice(words) if words and rng.random() < 0.7 else rng.choice(["痩せた", "副業", "転職", "節約", "ありがとう"])
        sep = rng.choice(["", "", "、", " "])
        return sep.join([w] * rng.randint(4, 9)), "runaway repetition of a phrase"
    raise ValueError(which)


NOISE_KINDS = ["url_only", "url_only", "title_with_url", "html", "html", "markdown", "bracket_run", "bracket_run",
               "char_run", "phrase_run", "phrase_run"]


# ----------------------------------------------------------------------------- assembly
def load_articles() -> tuple[list[dict], list[str]]:
    files = sorted(SOURCE_DIR.glob("articles_*.jsonl"))
    articles = []
    for path in files:
        with path.open(encoding="utf-8") as f:
            for n, line in enumerate(f, 1):
                if not line.strip():
                    continue
                a = json.loads(line)
                for key in ("category", "body", "title"):
                    if not isinstance(a.get(key), str) or not a[key].strip():
                        raise ValueError(f"{path.name}:{n}: missing {key}")
                a["source_index"] = len(articles)
                a["source_file"] = path.name
                articles.append(a)
    bodies = Counter(a["body"] for a in articles)
    titles = Counter(a["title"] for a in articles)
    dup = [b for b, c in bodies.items() if c > 1] + [t for t, c in titles.items() if c > 1]
    if dup:
        raise ValueError(f"source articles repeat a body or title: {dup[:3]}")
    return articles, [p.name for p in files]


def counts_for(total: int, mix: dict[str, float]) -> dict[str, int]:
    counts = {k: round(total * share) for k, share in mix.items()}
    counts = {"clean": total - sum(counts.values()), **counts}
    return counts


def build(articles: list[dict], total: int, mix: dict[str, float], seed: int, *, with_meta: bool,
          instructions: list[str]) -> tuple[list[dict], list[dict]]:
    rng = random.Random(seed)
    counts = counts_for(total, mix)
    n_clean = min(counts["clean"], len(articles))
    if n_clean < counts["clean"]:  # too few articles: the shortfall becomes extra exact duplicates
        counts["exact_duplicate"] += counts["clean"] - n_clean
        counts["clean"] = n_clean
    # Held-out articles appear only in contaminated rows (their own title never does); series stay whole.
    loose = [a for a in articles if not a.get("group")]
    n_hold = min(len(articles) - n_clean, len(loose))
    held = rng.sample(loose, n_hold)
    held_ids = {a["source_index"] for a in held}
    clean_arts = [a for a in articles if a["source_index"] not in held_ids][:n_clean]
    if len(clean_arts) < n_clean:
        raise ValueError("not enough articles")

    recs: list[dict] = []

    def new(kind, art, row, detail, dup_of=None, shares=None):
        rec = {"kind": kind, "art": art, "row": row, "detail": detail, "dup_of": dup_of, "shares": shares}
        recs.append(rec)
        return rec

    def meta(art, keep=True):
        if not with_meta:
            return {}
        if keep:
            return {"category": art["category"], "group": art.get("group")}
        return {"category": None, "group": None}

    clean_by_source = {}
    for art in clean_arts:
        row = {"instruction": rng.choice(instructions), "input": art["body"], "output": art["title"], **meta(art)}
        clean_by_source[art["source_index"]] = new("clean", art, row, "clean")

    clean_recs = list(clean_by_source.values())
    originals = rng.sample(clean_recs, min(len(clean_recs), counts["exact_duplicate"] + counts["near_duplicate"]))
    exact_orig = originals[: counts["exact_duplicate"]]
    near_orig = originals[counts["exact_duplicate"]:]
    while len(exact_orig) < counts["exact_duplicate"]:  # only with very few articles
        exact_orig.append(rng.choice(clean_recs))
    for orig in exact_orig:
        row, variant = exact_variant(orig["row"], rng)
        new("exact_duplicate", orig["art"], row, f"exact duplicate ({variant})", dup_of=orig)
    for orig in near_orig:
        row, detail = near_variant(orig["row"], rng)
        new("near_duplicate", orig["art"], row, f"near duplicate: {detail}", dup_of=orig)

    # Bodies for contaminated rows: held-out articles first, then articles that also have a clean row
    # (the same article scraped twice, e.g. once from a tag page whose "title" was the tag chips).
    reuse = rng.sample(clean_recs, len(clean_recs))
    pool = [(a, None) for a in held] + [(r["art"], r) for r in reuse]
    pool_i = 0

    def next_article():
        nonlocal pool_i
        art, clean_rec = pool[pool_i % len(pool)]
        pool_i += 1
        return art, clean_rec

    def instruction_for(clean_rec):
        if clean_rec is None or len(instructions) == 1:
            return rng.choice(instructions)
        return rng.choice([i for i in instructions if i != clean_rec["row"]["instruction"]])

    # Incomplete and noise rows take held-out articles first (their outputs often carry the article's
    # title, which should not collide with a clean row's), then tag lists.
    plan = ["incomplete"] * counts.get("incomplete", 0) + ["noise"] * counts.get("noise", 0)
    rng.shuffle(plan)
    plan += ["tag_list"] * counts["tag_list"]
    inc_cycle = rng.sample(INCOMPLETE_KINDS, len(INCOMPLETE_KINDS))
    noise_cycle = rng.sample(NOISE_KINDS, len(NOISE_KINDS))
    n_inc = n_noise = 0
    for kind in plan:
        art, clean_rec = next_article()
        instr = instruction_for(clean_rec)
        if kind == "tag_list":
            out, detail = render_tags(art, rng)
            row = {"instruction": instr, "input": art["body"], "output": out, **meta(art, rng.random() < 0.65)}
        elif kind == "incomplete":
            which = inc_cycle[n_inc % len(inc_cycle)]
            n_inc += 1
            inp, out, detail = make_incomplete(art, rng, which)
            row = {"instruction": instr, "input": inp, "output": out, **meta(art, rng.random() < 0.5)}
            if inp != art["body"]:
                clean_rec = None  # the input is not the article's body any more
        else:
            which = noise_cycle[n_noise % len(noise_cycle)]
            n_noise += 1
            out, detail = make_noise(art, rng, which)
            row = {"instruction": instr, "input": art["body"], "output": out, **meta(art, rng.random() < 0.5)}
        new(kind, art, row, detail, shares=clean_rec)

    # Shuffle, then make every duplicate come after the row it copies.
    rng.shuffle(recs)
    pos = {id(r): i for i, r in enumerate(recs)}
    for r in list(recs):
        if r["dup_of"] is not None:
            i, j = pos[id(r)], pos[id(r["dup_of"])]
            if i < j:
                recs[i], recs[j] = recs[j], recs[i]
                pos[id(recs[i])], pos[id(recs[j])] = i, j
    for i, r in enumerate(recs):
        r["line"] = i + 1
    for r in recs:
        if r["dup_of"] is not None:
            assert r["dup_of"]["line"] < r["line"]

    rows, labels = [], []
    for r in recs:
        detail = r["detail"]
        if r["shares"] is not None:
            detail += f"; same input as clean row at line {r['shares']['line']}"
        rows.append(r["row"])
        labels.append({"line": r["line"], "kind": r["kind"], "detail": detail, "source_index": r["art"]["source_index"],
                       "duplicate_of": r["dup_of"]["line"] if r["dup_of"] is not None else None})
    check(rows, labels)
    return rows, labels


def check(rows: list[dict], labels: list[dict]) -> None:
    """Only labelled exact duplicates share (input, output) after normalization; near duplicates do not."""
    seen: dict[tuple[str, str], int] = {}
    for row, lab in zip(rows, labels):
        key = (dedup_key(row["input"] or ""), dedup_key(row["output"] or ""))
        if lab["kind"] == "exact_duplicate":
            assert seen.get(key) == lab["duplicate_of"], lab
            continue
        assert key not in seen, (lab, seen.get(key))
        seen[key] = lab["line"]
    for row, lab in zip(rows, labels):
        if lab["kind"] == "near_duplicate":
            orig = rows[lab["duplicate_of"] - 1]
            assert dedup_key(orig["input"]) != dedup_key(row["input"])


def write_jsonl(path: Path, items: list[dict]) -> None:
    with path.open("w", encoding="utf-8", newline="\n") as f:
        for item in items:
            f.write(json.dumps(item, ensure_ascii=False) + "\n")


def composition(labels: list[dict]) -> list[tuple[str, int, float]]:
    c = Counter(lab["kind"] for lab in labels)
    n = len(labels)
    return [(k, c[k], 100.0 * c[k] / n) for k in KINDS if c[k]] + [("total", n, 100.0)]


def table(rows: list[tuple[str, int, float]]) -> str:
    lines = ["| kind | rows | share |", "|---|---:|---:|"]
    lines += [f"| {k} | {n} | {p:.1f}% |" for k, n, p in rows]
    return "\n".join(lines)


def write_readme(path: Path, files: list[str], articles: list[dict], note_labels, v1_labels, note_rows) -> None:
    cats = Counter(a["category"] for a in articles)
    series = Counter(a["group"] for a in articles if a.get("group"))
    clean_cats = Counter(r.get("category") for r, lab in zip(note_rows, note_labels) if lab["kind"] == "clean")
    cat_table = "\n".join(["| category | articles | clean rows in note_titles |", "|---|---:|---:|"]
                          + [f"| {c} | {n} | {clean_cats[c]} |" for c, n in sorted(cats.items())])
    text = f"""# Sample data

Japanese note.com-style articles and titles for the finegate demo and tests. Everything here except
`source/` is generated by `build_sample.py`; rebuild with

```
python data/sample/build_sample.py
```

(standard library only, fixed seeds: the same sources always give byte-identical files).

## Files

| file | what it is |
|---|---|
| `source/articles_*.jsonl` | handwritten articles, one per line: `{{"category", "group", "body", "title"}}`. `group` is `null` or a series id (`series-ikukyu-nikki`) shared by the parts of a multi-part series. Read in file-name order ({", ".join(files)}); an article's `source_index` is its 0-based position in that concatenation. |
| `note_titles.jsonl` | alpaca rows `{{"instruction", "input", "output", "category", "group"}}`: the clean articles mixed with the contamination a scraped dataset really had. The demo (`configs/demo.yaml`) trains on what the clean stage keeps. |
| `note_titles.labels.jsonl` | ground truth, one line per row in the same order: `{{"line", "kind", "detail", "source_index", "duplicate_of"}}`. |
| `v1_replay.jsonl` | {len(v1_labels)} alpaca rows `{{"instruction", "input", "output"}}` (no category, one fixed instruction) reproducing the failed v1 run: 28% tag-list outputs and duplicates (`configs/v1-replay.yaml`). |
| `v1_replay.labels.jsonl` | its ground truth, same schema. |

## Labels

- `clean`: an article's body and its real title.
- `tag_list`: the output is the article's tags instead of a title, in the styles scraped pages really
  show: `自己紹介｜子育て｜ワーママ｜30代`, `#副業 #在宅ワーク`, `節約, 家計簿, 貯金`, `旅行/京都/一人旅`,
  `読書・勉強・資格`, `転職、キャリア、30代`, half-width `|`, spaces, `【副業】【在宅】`, a title with tags
  tacked on (`…｜副業｜主婦｜在宅`), `タグ：…`, sometimes a trailing separator or only two tags.
- `exact_duplicate`: the same input and output as an earlier clean row (`duplicate_of`), identical or
  differing only in what `components.common.text.dedup_key` normalizes away (white space, line breaks,
  full-width ASCII, half-width kana). Same instruction.
- `near_duplicate`: a small edit of an earlier clean row: a particle or word changed, a sentence
  appended or dropped, punctuation, and often a small title edit (`【再掲】`, `！`, `3年`→`三年`).
  `detail` gives the edits and the 5-gram Jaccard similarity of the inputs.
- `incomplete`: empty, white-space, `null`, `"null"`, `TODO`, `タイトル未定`/`（タイトル）`/`無題`, an unclosed
  `【` or `「`, a title cut at a separator, a body cut mid-sentence with an empty output, or an empty/null input.
- `noise`: a URL instead of a title (or after it), HTML or Markdown around the title, runaway repetition
  (`「」」」」」」」`, `痩せた痩せた痩せた痩せた`, `！！！！！！`).

A duplicate is always the later of its pair, so a filter that keeps the first occurrence is exactly right.
Some contaminated rows (most tag lists) reuse the body of an article that also has a clean row (the same
article scraped twice, once from a tag page); their `detail` names that clean row's line. In
`note_titles.jsonl` such a row always has a different instruction from its clean row, yet for long bodies
the two prompts can still be near duplicates: drop contamination before deduplicating, or a clean row can be
lost as the "duplicate" of a tag-list row. In `v1_replay.jsonl` (one instruction) the prompts are identical
with conflicting outputs, as in the real v1 data. A few near duplicates are deliberately below a 0.8
5-gram Jaccard on the input (see `detail`).

Tag lists are hard on purpose: besides plain nouns they use note.com's own phrase-like hashtags
(`最近の学び`, `私の仕事`, `今日の学び`, `やってみた`, `休日の過ごし方`, `大人の学び直し`, `丁寧な暮らし`,
`個人で稼ぐ`), titles with `、` followed by tags, and full-width/half-width separators with uneven spacing.
Clean titles deliberately include what a naive filter trips on: one
`｜` between title and subtitle (`転職して半年｜年収より大事だったこと`), series titles
(`育休日記 その2｜…`), `【】` prefixes, `、` lists inside a sentence (`30代、子持ち、転職。条件は交渉できた`),
katakana joined by `・` (`ワーク・ライフ・バランス`), repeated words (`ちゃんと、ちゃんと休む`).

## Composition

`note_titles.jsonl` ({len(note_labels)} rows, seed {NOTE_SEED}):

{table(composition(note_labels))}

`v1_replay.jsonl` ({len(v1_labels)} rows, seed {V1_SEED}):

{table(composition(v1_labels))}

Source articles ({len(articles)}, {sum(series.values())} of them in {len(series)} series):

{cat_table}
"""
    path.write_text(text, encoding="utf-8")


def main() -> None:
    articles, files = load_articles()
    if not articles:
        raise SystemExit(f"no articles under {SOURCE_DIR}")
    total = len(articles) * 3 // 2
    note_rows, note_labels = build(articles, total, NOTE_MIX, NOTE_SEED, with_meta=True, instructions=INSTRUCTIONS)
    v1_rows, v1_labels = build(articles, V1_ROWS, V1_MIX, V1_SEED, with_meta=False, instructions=[V1_INSTRUCTION])
    write_jsonl(HERE / "note_titles.jsonl", note_rows)
    write_jsonl(HERE / "note_titles.labels.jsonl", note_labels)
    write_jsonl(HERE / "v1_replay.jsonl", v1_rows)
    write_jsonl(HERE / "v1_replay.labels.jsonl", v1_labels)
    write_readme(HERE / "README.md", files, articles, note_labels, v1_labels, note_rows)
    print(f"sources: {', '.join(files)} ({len(articles)} articles)")
    for name, labels in (("note_titles.jsonl", note_labels), ("v1_replay.jsonl", v1_labels)):
        print(f"\n{name}")
        for k, n, p in composition(labels):
            print(f"  {k:16s} {n:5d}  {p:5.1f}%")


if __name__ == "__main__":
    main()
