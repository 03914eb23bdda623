"""`.boltignore` follows `.dockerignore`'s rules."""

from __future__ import annotations

from bolt.build.ignore import parse


def test_patterns_and_exceptions() -> None:
    rules = parse("# comment\n*.log\n!keep.log\n**/secret*\nbuild/\n/docs/**/*.md\n")
    excluded = {
        "a.log": True,
        "keep.log": False,
        "sub/a.log": False,  # * does not cross directories
        "secret": True,
        "x/y/secret.txt": True,
        "build": True,
        "build/deep/file": True,  # a matched directory excludes what is under it
        "docs/a.md": True,
        "docs/x/y/a.md": True,
        "docs/a.txt": False,
        "src/main.py": False,
    }
    assert {path: rules.excluded(path) for path in excluded} == excluded


def test_exception_reincludes_a_file_in_an_excluded_directory() -> None:
    rules = parse("vendor\n!vendor/keep.txt\n")
    assert rules.excluded("vendor/other.txt")
    assert not rules.excluded("vendor/keep.txt")
    assert rules.has_exceptions


def test_last_matching_pattern_wins() -> None:
    rules = parse("!a.txt\n*.txt\n")
    assert rules.excluded("a.txt")
