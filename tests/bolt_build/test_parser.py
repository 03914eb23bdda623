"""Reading Dockerfiles: directives, continuations, comments, heredocs, words, and errors
that name file:line."""

from __future__ import annotations

import pytest

from bolt.build import words
from bolt.build.instructions import read
from bolt.build.syntax import DockerfileError, parse


def instructions(text: str) -> list[tuple[str, str, int]]:
    return [(i.keyword, i.args, i.line) for i in parse(text, "Dockerfile.bolt").instructions]


def test_continuations_join_lines_and_drop_comments_inside() -> None:
    text = "FROM busybox\nRUN echo a \\\n# a comment in the middle\n\n    && echo b\nCMD x\n"
    assert instructions(text) == [
        ("FROM", "busybox", 1),
        ("RUN", "echo a     && echo b", 2),
        ("CMD", "x", 6),
    ]


def test_keywords_are_case_insensitive_and_comments_are_skipped() -> None:
    assert instructions("# hello\nfrom busybox\n  # indented comment\nrun true\n") == [
        ("FROM", "busybox", 2),
        ("RUN", "true", 4),
    ]


def test_escape_directive_switches_the_continuation_character() -> None:
    df = parse("# escape=`\nFROM busybox\nRUN echo C:\\path `\n  done\n", "f")
    assert df.escape == "`"
    assert df.instructions[1].args == "echo C:\\path   done"


def test_directive_after_a_comment_is_only_a_comment() -> None:
    df = parse("# hello\n# escape=`\nFROM busybox\n", "f")
    assert df.escape == "\\" and df.directives == {}


def test_syntax_directive_is_read() -> None:
    assert parse("# syntax=docker/dockerfile:1\nFROM x\n", "f").directives == {
        "syntax": "docker/dockerfile:1"
    }


def test_heredoc_body_belongs_to_its_instruction() -> None:
    df = parse("FROM x\nRUN <<EOF\necho one\necho two\nEOF\nCMD y\n", "f")
    run = df.instructions[1]
    assert run.heredocs[0].body == "echo one\necho two\n"
    assert [i.keyword for i in df.instructions] == ["FROM", "RUN", "CMD"]


def test_unknown_instruction_names_file_and_line() -> None:
    df = parse("FROM busybox\n\nFROB something\n", "ctx/Dockerfile.bolt")
    with pytest.raises(DockerfileError) as err:
        read(df, df.instructions[1])
    assert str(err.value).startswith("ctx/Dockerfile.bolt:3: unknown instruction FROB")


def test_unknown_flag_names_file_and_line() -> None:
    df = parse("FROM busybox\nCOPY --frm=a x /y\n", "Dockerfile.bolt")
    with pytest.raises(DockerfileError, match=r"^Dockerfile.bolt:2: COPY does not take --frm"):
        read(df, df.instructions[1])


def test_unterminated_heredoc_names_its_line() -> None:
    with pytest.raises(DockerfileError, match=r"^f:2: heredoc <<EOF is not terminated"):
        parse("FROM x\nRUN <<EOF\necho\n", "f")


def test_exec_and_shell_forms() -> None:
    df = parse('FROM x\nCMD ["a", "b c"]\nCMD a "b c"\nCMD [not json\n', "f")
    exec_form, shell_form, broken = (read(df, i) for i in df.instructions[1:])
    assert exec_form.argv == ("a", "b c")
    assert shell_form.argv is None and shell_form.text == 'a "b c"'
    assert broken.argv is None and broken.text == "[not json"


def test_env_pairs_and_legacy_form() -> None:
    df = parse('FROM x\nENV A=1 B="two words"\nENV C the rest of it\n', "f")
    pairs = read(df, df.instructions[1]).pairs
    assert pairs == (("A", "1"), ("B", '"two words"'))
    assert read(df, df.instructions[2]).pairs == (("C", "the rest of it"),)


def test_expansion_forms() -> None:
    env = {"A": "x", "EMPTY": ""}
    assert words.expand("$A-${A}-${B:-dflt}-${A:+alt}-${EMPTY:-e}-${EMPTY-e}", env) == (
        "x-x-dflt-alt-e-"
    )
    assert words.expand("'$A' \"$A\" \\$A", env) == "$A x $A"
    assert words.split('a "b c" d\\ e', env) == ["a", "b c", "d e"]


def test_required_variable_message() -> None:
    with pytest.raises(words.ExpansionError, match="B: must be set"):
        words.expand("${B:?must be set}", {})
