"""The README as a new user reads it: its CLI reference is the parser's own, and the commands
it tells them to run exist."""

from __future__ import annotations

import re

from conftest import REPO

from maas.cli.reference import END, START, render

README = (REPO / "README.md").read_text(encoding="utf-8")


def test_the_cli_reference_is_the_parsers() -> None:
    block = README[README.index(START) : README.index(END) + len(END)]
    assert block == render(), "the README's CLI reference is stale: run `make cli-reference`"


def test_every_make_target_the_readme_names_exists() -> None:
    makefile = (REPO / "Makefile").read_text(encoding="utf-8")
    targets = set(re.findall(r"^([a-z][\w-]*):", makefile, re.MULTILINE))
    targets |= set(re.findall(r"^([a-z][\w-]*):", (REPO / "infra" / "sam.mk").read_text(), re.M))
    named = set(re.findall(r"`make ([a-z][\w-]*)", README))
    assert {"demo", "test"} <= named
    assert named <= targets, named - targets


def test_every_maas_command_the_readme_shows_exists() -> None:
    from maas.cli import build_parser
    from maas.cli.reference import walk

    known = {words.removeprefix("maas ") for words, _, _ in walk(build_parser())}
    groups = {words.split()[0] for words in known if " " in words}
    code = "\n".join(re.findall(r"```[a-z]*\n(.*?)```", README, re.DOTALL))
    code += "\n" + "\n".join(re.findall(r"`([^`\n]+)`", README))
    shown = re.findall(r"(?:^|\s|/)maas ([a-z][a-z-]*)(?: ([a-z][a-z-]*))?", code, re.MULTILINE)
    assert len(shown) > 10
    unknown = set()
    for first, second in shown:
        wanted = f"{first} {second}" if first in groups else first
        if wanted not in known:
            unknown.add(wanted)
    assert not unknown, unknown
