"""The text rules the clean stage applies to training titles and hf_check applies to a model's answers
(components/common/detectors.py), so both are judged alike; and the near-duplicate rule clean and split share."""

from __future__ import annotations

from pydantic import Field

from components.common.section import Section

# Whole-text placeholders (compared after NFKC, case folding and stripping quotes/brackets).
PLACEHOLDERS = ["null", "none", "nan", "n/a", "undefined", "todo", "tbd", "untitled", "no title", "title", "test",
                "sample", "xxx", "タイトル未定", "タイトル", "（タイトル）", "(タイトル)", "仮タイトル", "仮題",
                "タイトルなし", "タイトルを入力", "無題", "未定", "なし", "テスト", "サンプル", "-", "…", "..."]


class TagListRule(Section):
    """A title is a tag list when it is several short noun segments joined by list separators
    (自己紹介｜子育て｜ワーママ｜30代); one ｜ between a title and its subtitle is not a list."""

    min_segments: int = Field(3, ge=2, description="Short segments that make a list (2 are title and subtitle).")
    max_segment_chars: int = Field(12, ge=1, description=(
        "Longer segments are phrases, not tags (Japanese tags are 2-8 characters; 12 leaves room for 【】 labels)."))
    min_hashtags: int = Field(2, ge=1, description=(
        "Hashtags that already make a tag list; a lone hashtag only when nothing else is there."))


class RepetitionRule(Section):
    """The same character or phrase repeated back to back is runaway repetition."""

    max_char_run: int = Field(4, ge=2, description="One character this many times in a row is a loop (」」」」).")
    max_phrase_repeats: int = Field(3, ge=2, description=(
        "A phrase of up to max_phrase_chars characters said this many times back to back is a loop."))
    max_phrase_chars: int = Field(12, ge=1, description="Longest phrase the repetition rule looks for.")


class NearDuplicateRule(Section):
    """Near duplicates by MinHash over character n-grams (components/common/near_duplicates.py)."""

    threshold: float = Field(0.7, gt=0, le=1, description=(
        "Estimated Jaccard similarity of character n-grams at which two texts are near duplicates. With 5-grams "
        "one edited character changes 5 of them, so on a 150-character article a few particle swaps or an "
        "appended sentence already bring Jaccard to 0.75-0.85; 0.7 catches those, while distinct articles, even "
        "in one series, stay under 0.2."))
    ngram: int = Field(5, ge=1, description="Characters per shingle.")
    num_perm: int = Field(128, ge=16, description=(
        "MinHash permutations; 128 keeps the Jaccard estimate within about ±0.04."))
