"""The clean stage's contamination rules (components/common/detectors.py), in the order it applies them."""

from __future__ import annotations

from components.clean.settings import CleanSection
from components.common.detectors import (
    detect_incomplete,
    detect_noise,
    detect_placeholder,
    detect_repetition,
    detect_tag_list,
    detect_url_or_html,
)

# The first rule a completion breaks is the reason it is rejected.
CONTAMINATION_RULES = ("url_or_html", "tag_list", "repetition", "incomplete", "noise")


def find_contamination(text: str, clean: CleanSection) -> tuple[str, str] | None:
    """(rule, detail) of the first contamination rule a completion breaks, or None when it is clean.
    A placeholder title counts as `incomplete`: it stands where a title is missing."""
    if detail := detect_url_or_html(text):
        return "url_or_html", detail
    if detail := detect_tag_list(text, clean.tag_list):
        return "tag_list", detail
    if detail := detect_repetition(text, clean.repetition):
        return "repetition", detail
    if detail := detect_placeholder(text, clean.placeholders) or detect_incomplete(text):
        return "incomplete", detail
    if detail := detect_noise(text):
        return "noise", detail
    return None
