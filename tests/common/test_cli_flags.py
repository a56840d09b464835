"""One spelling per stage folder on every command: --data-dir a split output, --model-dir a train output,
--gguf-dir a gguf output, --output-dir where the command writes; the old spellings still work, unlisted."""

from __future__ import annotations

import pytest

from pipelines.cli import build_parser

# command -> the folder flags it shows, with a value for each
FOLDERS = {
    "train": {"--data-dir": "s", "--output-dir": "o"},
    "hf-check": {"--model-dir": "m", "--data-dir": "s", "--output-dir": "o"},
    "gguf": {"--model-dir": "m", "--data-dir": "s", "--output-dir": "o"},
    "evaluate": {"--gguf-dir": "g", "--data-dir": "s", "--output-dir": "o", "--model-dir": "m"},
    "make-tiny-base": {"--corpus": "c", "--output-dir": "o"},
    "import-gguf": {"--gguf": "f.gguf", "--output-dir": "o"},
}
OLD = [("hf-check", "--model", "--model-dir"), ("hf-check", "--data", "--data-dir"), ("evaluate", "--gguf", "--gguf-dir"),
       ("evaluate", "--train-dir", "--model-dir"), ("make-tiny-base", "--output", "--output-dir"),
       ("import-gguf", "--output", "--output-dir")]


def _args(command: str, renamed: dict[str, str] | None = None) -> list[str]:
    renamed = renamed or {}
    return [command, *(x for flag, value in FOLDERS[command].items() for x in (renamed.get(flag, flag), value))]


def _help(command: str, capsys) -> str:
    with pytest.raises(SystemExit):
        build_parser().parse_args([command, "--help"])
    return capsys.readouterr().out


@pytest.mark.parametrize(("command", "old", "new"), OLD, ids=lambda x: str(x))
def test_an_old_spelling_means_the_same_and_is_not_listed(command, old, new, capsys):
    assert build_parser().parse_args(_args(command, {new: old})) == build_parser().parse_args(_args(command))
    assert f"{old} " not in _help(command, capsys).replace(new, "")


@pytest.mark.parametrize("command", FOLDERS)
def test_each_command_shows_the_one_spelling_of_its_folders(command, capsys):
    shown = _help(command, capsys)
    assert all(flag in shown for flag in FOLDERS[command])
    assert not {"--model ", "--data ", "--train-dir", "--output "} & {w + " " for w in shown.split()}


def test_a_missing_folder_is_named_by_its_one_spelling(capsys):
    from pipelines.cli import main

    assert main(["hf-check", "--data-dir", "s", "--output-dir", "o"]) == 2
    err = capsys.readouterr().err
    assert "--model-dir" in err and err.count("\n") == 1
