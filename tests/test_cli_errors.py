"""Every way a user can hand the CLI something broken ends in one line on stderr,
`maas: error: ...`, and the exit status of its kind (maas.exits): 2 for a wrong command line
or input, 3 for a model refused by a check, 1 for what could not be done. Never a traceback."""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from conftest import open_store

from maas.cli import main
from maas.exits import EXIT_ERROR, EXIT_REFUSED, EXIT_USAGE

TRAIN = [
    str(Path(sys.executable).parents[2] / ".venv-train" / "bin" / "python"),
    "-m",
    "maas.training",
]


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str]:
    try:
        status = main(list(argv))
    except SystemExit as exc:  # argparse
        status = int(exc.code or 0)
    err = capsys.readouterr().err
    return status, err


def one_line(status: int, err: str, expected: int, *words: str) -> None:
    lines = [line for line in err.splitlines() if line.strip()]
    assert status == expected, err
    assert len(lines) == 1 and lines[0].startswith("maas: error: "), err
    assert "Traceback" not in err
    for word in words:
        assert word in lines[0], lines[0]


@pytest.fixture
def store(trained_model: Path, tmp_path: Path) -> Path:
    root = tmp_path / "store"
    open_store(root).publish(trained_model, "reviews", alias="production")
    return root


def edit_version(store: Path, change: Callable[[dict[str, object], Path], None]) -> None:
    """Change a published version's files or manifest in place (what a broken disk, a botched
    copy or a person with an editor does); the tests read it with signing off, so only the
    checks of the files themselves stand between the change and the model."""
    folder = store / "reviews" / "versions" / "1"
    manifest = json.loads((folder / "manifest.json").read_text())
    change(manifest, folder)
    (folder / "manifest.json").write_text(json.dumps(manifest))


# ---------------------------------------------------------------------------- data files
@pytest.mark.parametrize(
    ("name", "content", "words"),
    [
        ("latin1.csv", "text,label\ncaf\xe9 cr\xe8me,positive\n".encode("latin-1"), ["UTF-8"]),
        ("quote.csv", b'text,label\n"unbalanced,positive\n', ["quote", "line 2"]),
        ("deep.jsonl", b'{"text": ' + b"[" * 3000 + b"]" * 3000 + b', "label": "x"}\n', ["JSON"]),
        ("huge.jsonl", b'{"text": ' + b"9" * 5000 + b', "label": "x"}\n', ["digits"]),
        ("array.jsonl", b'["text", "label"]\n', ["JSON array", ".json"]),
        ("empty.csv", b"", ["no rows"]),
        ("data.parquet", b"PAR1", ["unknown file type"]),
    ],
)
def test_bad_data_files(
    capsys: pytest.CaptureFixture[str],
    store: Path,
    tmp_path: Path,
    name: str,
    content: bytes,
    words: list[str],
) -> None:
    data = tmp_path / name
    data.write_bytes(content)
    status, err = run(capsys, "evaluate", "--store", str(store), "--model", "reviews", str(data))
    one_line(status, err, EXIT_USAGE, *words)


def test_the_training_job_speaks_the_same_way(tmp_path: Path) -> None:
    data = tmp_path / "latin1.csv"
    data.write_bytes("text,label\ncaf\xe9,a\n".encode("latin-1"))
    done = subprocess.run(
        [*TRAIN, str(data), "--out", str(tmp_path / "m")], capture_output=True, text=True
    )
    one_line(done.returncode, done.stderr, EXIT_USAGE, "UTF-8")
    file = tmp_path / "a-file"
    file.write_text("x")
    good = Path(__file__).parents[1] / "data" / "reviews-zh" / "reviews.csv"
    done = subprocess.run([*TRAIN, str(good), "--out", str(file)], capture_output=True, text=True)
    one_line(done.returncode, done.stderr, EXIT_USAGE, "is a file")


# ------------------------------------------------------------------------ broken stores
def test_a_broken_alias_file(capsys: pytest.CaptureFixture[str], store: Path) -> None:
    (store / "reviews" / "aliases" / "production.json").write_text("{not json")
    status, err = run(
        capsys, "predict", "--store", str(store), "--model", "reviews@production", "x"
    )
    one_line(status, err, EXIT_ERROR, "does not point at a version")
    # and promote repairs it
    assert run(capsys, "promote", "--store", str(store), "--name", "reviews", "--version", "1",
               "--alias", "production")[0] == 0  # fmt: skip


@pytest.mark.parametrize(
    ("change", "words"),
    [
        (lambda m, f: (f / "tokenizer.json").write_text("{broken"), ["tokenizer.json"]),
        (lambda m, f: m["files"]["model.tflite"].pop("sha256"), ["not a valid manifest"]),
        (lambda m, f: m.update(labels=["a", "b", "c"]), ["3 labels"]),
        (lambda m, f: m.update(labels="ab"), ["not a valid manifest"]),
        (lambda m, f: m.update(schema_version=7), ["schema version 7"]),
    ],
)
def test_a_broken_version(
    capsys: pytest.CaptureFixture[str],
    store: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    change: Callable[[dict[str, object], Path], None],
    words: list[str],
) -> None:
    def rehashed(manifest: dict[str, object], folder: Path) -> None:
        change(manifest, folder)
        if (folder / "tokenizer.json").read_text().startswith("{broken"):
            import hashlib

            files = manifest["files"]
            assert isinstance(files, dict)
            files["tokenizer.json"] = {
                "sha256": hashlib.sha256((folder / "tokenizer.json").read_bytes()).hexdigest(),
                "bytes": (folder / "tokenizer.json").stat().st_size,
            }

    edit_version(store, rehashed)
    monkeypatch.setenv("MAAS_SIGNING_KEY", "none")
    monkeypatch.setenv("MAAS_CACHE_DIR", str(tmp_path / "cache"))
    status, err = run(capsys, "predict", "--store", str(store), "--model", "reviews:1", "很好")
    one_line(status, err, EXIT_REFUSED, *words)


def test_a_tampered_version_is_refused_by_its_signature(
    capsys: pytest.CaptureFixture[str], store: Path
) -> None:
    edit_version(store, lambda m, f: m.update(labels=["positive", "negative"]))
    status, err = run(capsys, "predict", "--store", str(store), "--model", "reviews:1", "很好")
    one_line(status, err, EXIT_REFUSED, "changed after it was published")


def test_a_store_that_cannot_be_read(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    status, err = run(capsys, "models", "--store", str(blocker / "store"))
    assert status == 0, "an empty listing, not an error: nothing is there"
    status, err = run(capsys, "predict", "--store", str(blocker / "store"), "--model", "m", "x")
    one_line(status, err, EXIT_USAGE, "no model named 'm'")


def test_a_signing_key_that_cannot_be_read(
    capsys: pytest.CaptureFixture[str], store: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("MAAS_SIGNING_KEY", str(tmp_path / "missing.key"))
    status, err = run(capsys, "predict", "--store", str(store), "--model", "reviews", "x")
    one_line(status, err, EXIT_ERROR, "cannot read the signing key", "MAAS_SIGNING_KEY")
    (tmp_path / "short.key").write_text("abc")
    monkeypatch.setenv("MAAS_SIGNING_KEY", str(tmp_path / "short.key"))
    status, err = run(capsys, "predict", "--store", str(store), "--model", "reviews", "x")
    one_line(status, err, EXIT_ERROR, "at least 32")


# ------------------------------------------------------------------------- names, versions
@pytest.mark.parametrize(
    ("argv", "words"),
    [
        (["promote", "--name", "reviews", "--version", "../../../x", "--alias", "p"], ["version"]),
        (["promote", "--name", "../x", "--version", "1", "--alias", "p"], ["name"]),
        (["promote", "--name", "reviews", "--version", "1", "--alias", "prod\n"], ["alias"]),
        (["promote", "--name", "name\n", "--version", "1", "--alias", "p"], ["name"]),
        (["predict", "--model", "reviews@prod\n", "x"], ["alias"]),
        (["predict", "--model", "reviews:1\n", "x"], ["version"]),
        (["evaluate", "--model", "reviews", "missing.csv"], ["no such file"]),
    ],
)
def test_names_and_versions_are_checked_whole(
    capsys: pytest.CaptureFixture[str], store: Path, argv: list[str], words: list[str]
) -> None:
    status, err = run(capsys, *argv, "--store", str(store))
    one_line(status, err, EXIT_USAGE, *words)


def test_publish_refuses_what_is_not_an_artifact(
    capsys: pytest.CaptureFixture[str], store: Path, tmp_path: Path, trained_model: Path
) -> None:
    status, err = run(capsys, "publish", str(tmp_path), "--store", str(store), "--name", "m")
    one_line(status, err, EXIT_USAGE, "not a model artifact")
    copy = shutil.copytree(trained_model, tmp_path / "copy")
    (copy / "model.tflite").write_bytes(b"not the model")
    status, err = run(capsys, "publish", str(copy), "--store", str(store), "--name", "m")
    one_line(status, err, EXIT_REFUSED, "does not match its manifest")


def test_the_installed_command_prints_no_traceback_for_an_internal_error(tmp_path: Path) -> None:
    """A bug still ends in one line (the traceback only with MAAS_DEBUG=1)."""
    script = (
        "import maas.cli.models as m\n"
        "def boom(args): raise RuntimeError('unexpected')\n"
        "m.run_models = boom\n"
        "import maas.cli, sys\n"
        "sys.exit(maas.cli.main(['models']))\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    one_line(done.returncode, done.stderr, EXIT_ERROR, "internal error", "RuntimeError")
    debug = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        env={**os.environ, "MAAS_DEBUG": "1"},
    )
    assert "Traceback" in debug.stderr and debug.returncode == EXIT_ERROR


# ------------------------------------------------------------- a new user's first hour
def test_a_semicolon_file_is_read_and_a_wrong_delimiter_is_named(
    capsys: pytest.CaptureFixture[str], store: Path, tmp_path: Path
) -> None:
    data = tmp_path / "semi.csv"
    data.write_text("text;label\n质量很好，推荐;positive\n太差了，退货;negative\n", "utf-8")
    argv = ["evaluate", "--store", str(store), "--model", "reviews", str(data)]
    status, err = run(capsys, *argv)
    assert status == 0, err
    status, err = run(capsys, *argv, "--delimiter", ",")
    one_line(status, err, EXIT_USAGE, "semi.csv:2", "'text'", "text;label", "--text-column")
    status, err = run(capsys, *argv, "--delimiter", ";;")
    one_line(status, err, EXIT_USAGE, "--delimiter", "one character")


def test_an_encoding_is_named_by_the_error_and_then_accepted(
    capsys: pytest.CaptureFixture[str], store: Path, tmp_path: Path
) -> None:
    data = tmp_path / "latin1.csv"
    data.write_bytes("text,label\ncaf\xe9 cr\xe8me,positive\n".encode("latin-1"))
    argv = ["evaluate", "--store", str(store), "--model", "reviews", str(data)]
    status, err = run(capsys, *argv)
    one_line(status, err, EXIT_USAGE, "not UTF-8", "byte 0xe9", "--encoding")
    assert run(capsys, *argv, "--encoding", "latin-1")[0] == 0
    status, err = run(capsys, *argv, "--encoding", "klingon")
    one_line(status, err, EXIT_USAGE, "klingon")


def test_a_json_array_file_is_read_whole(
    capsys: pytest.CaptureFixture[str], store: Path, tmp_path: Path
) -> None:
    data = tmp_path / "rows.json"
    rows = [
        {"text": "质量很好，推荐", "label": "positive"},
        {"text": "太差了", "label": "negative"},
    ]
    data.write_text(json.dumps(rows, ensure_ascii=False), "utf-8")
    status, err = run(capsys, "evaluate", "--store", str(store), "--model", "reviews", str(data))
    assert status == 0, err
    data.write_text(json.dumps([*rows, "a string"]), "utf-8")
    status, err = run(capsys, "evaluate", "--store", str(store), "--model", "reviews", str(data))
    one_line(status, err, EXIT_USAGE, "item 3", "not an object")


def test_version() -> None:
    import maas

    done = subprocess.run(
        [str(Path(sys.executable).with_name("maas")), "--version"], capture_output=True, text=True
    )
    assert done.returncode == 0 and done.stdout == f"maas {maas.__version__}\n"


def _parsers() -> list[tuple[str, Any]]:
    """Every parser of the command line, with its command words."""
    from maas.cli import build_parser
    from maas.cli.reference import walk

    return [(words, parser) for words, parser, _ in walk(build_parser())]


@pytest.mark.parametrize(("words", "parser"), _parsers(), ids=lambda v: v)
def test_every_option_has_help_and_states_its_default(words: str, parser: Any) -> None:
    text = parser.format_help()
    assert parser.description, f"maas {words} has no description"
    for action in parser._actions:
        if action.help == argparse.SUPPRESS or isinstance(action, argparse._HelpAction):
            continue
        if isinstance(action, argparse._SubParsersAction):
            helps = {c.dest: c.help for c in action._choices_actions}
            assert all(helps.values()) and len(helps) == len(action.choices), words
            continue
        name = "/".join(action.option_strings) or action.dest
        assert action.help, f"maas {words}: {name} has no help text"
        takes_value = action.option_strings and action.nargs != 0
        if takes_value and not action.required:
            rendered = parser._get_formatter()._expand_help(action)
            assert "default" in rendered, f"maas {words}: {name} does not state its default"
    assert "usage: maas" in text


def test_model_and_alias_typos_name_the_store_and_the_names_it_has(
    capsys: pytest.CaptureFixture[str], store: Path
) -> None:
    status, err = run(capsys, "predict", "--store", str(store), "--model", "reviw", "好")
    one_line(
        status, err, EXIT_USAGE, "no model named 'reviw'", "did you mean 'reviews'", store.name
    )
    status, err = run(capsys, "predict", "--store", str(store), "--model", "reviews@prod", "好")
    one_line(status, err, EXIT_USAGE, "no alias 'prod'", "did you mean 'production'")
    status, err = run(capsys, "models", "--store", str(store), "--name", "review")
    one_line(status, err, EXIT_USAGE, "did you mean 'reviews'")


def test_promote_refuses_a_misspelt_alias_and_alias_delete_removes_one(
    capsys: pytest.CaptureFixture[str], store: Path
) -> None:
    promote = ["promote", "--store", str(store), "--name", "reviews", "--version", "1"]
    status, err = run(capsys, *promote, "--alias", "prodution")
    one_line(status, err, EXIT_USAGE, "did you mean 'production'", "--create")
    assert not (store / "reviews" / "aliases" / "prodution.json").exists()

    assert run(capsys, *promote, "--alias", "staging")[0] == 0, "no near name: a new alias"
    assert run(capsys, *promote, "--alias", "stagin", "--create")[0] == 0
    status = main(["alias", "list", "--store", str(store), "--json"])
    listed = json.loads(capsys.readouterr().out)
    assert status == 0
    assert listed["aliases"] == {"reviews": {"production": "1", "staging": "1", "stagin": "1"}}

    status, err = run(capsys, "alias", "delete", "--store", str(store), "reviews@stagin")
    assert status == 0 and "deleted reviews@stagin" in err
    status, err = run(capsys, "alias", "delete", "--store", str(store), "reviews@stagin")
    one_line(status, err, EXIT_USAGE, "no alias 'stagin'", "did you mean 'staging'")
    status, err = run(capsys, "alias", "delete", "--store", str(store), "reviews")
    one_line(status, err, EXIT_USAGE, "NAME@ALIAS")
    main(["alias", "list", "--store", str(store)])
    assert capsys.readouterr().out.splitlines() == [
        "reviews@production -> 1",
        "reviews@staging -> 1",
    ]


@pytest.mark.parametrize("uri", ["s3//bucket/models", "s3:bucket", "S3:/bucket", "file//tmp/x"])
def test_a_store_uri_typo_is_refused_with_the_uri_meant(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path, uri: str
) -> None:
    monkeypatch.chdir(tmp_path)
    status, err = run(capsys, "models", "--store", uri)
    meant = "file:///" if uri.startswith("file") else "s3://"
    one_line(status, err, EXIT_ERROR, "is not a store URI", f"did you mean {meant}")
    monkeypatch.setenv("MAAS_STORE", uri)
    status, err = run(capsys, "models")
    one_line(status, err, EXIT_ERROR, "is not a store URI")
    assert list(tmp_path.iterdir()) == [], "nothing was created"


@pytest.mark.parametrize(
    ("text", "code"), [("", "empty"), ("  \u3000\t", "empty"), ("好" * 10_001, "10000")]
)
def test_the_cli_checks_texts_as_the_functions_do(
    capsys: pytest.CaptureFixture[str], store: Path, text: str, code: str
) -> None:
    status, err = run(capsys, "predict", "--store", str(store), "--model", "reviews", text)
    one_line(status, err, EXIT_USAGE, "text 1", code)


def test_publish_reuse_gives_the_same_version_for_the_same_model(
    capsys: pytest.CaptureFixture[str], store: Path, trained_model: Path
) -> None:
    publish = ["publish", str(trained_model), "--store", str(store), "--name", "reviews"]
    assert main([*publish, "--reuse", "--alias", "production"]) == 0
    out, err = capsys.readouterr()
    assert out == "1\n" and "reused" in err
    assert main(publish) == 0 and capsys.readouterr().out == "2\n", "without --reuse: new"
    assert main([*publish, "--reuse"]) == 0 and capsys.readouterr().out == "2\n"


@pytest.mark.parametrize("shell", ["bash", "zsh"])
def test_shell_completion_knows_every_command(shell: str) -> None:
    done = subprocess.run(
        [str(Path(sys.executable).with_name("maas")), "completion", shell],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    for word in ("train", "serve", "create-queue", "--delimiter", "--reuse"):
        assert word in done.stdout, word
    if shell == "bash":
        checked = subprocess.run(["bash", "-n"], input=done.stdout, text=True, capture_output=True)
        assert checked.returncode == 0, checked.stderr
