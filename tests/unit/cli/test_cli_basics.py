"""What every command shares: --version, help on every command and option, the explicit command list,
and the one CSV reader (BOM, empty files, the same errors from ``drift`` and ``reference build``, progress)."""

from __future__ import annotations

import argparse
import ast
import io
from pathlib import Path

import numpy as np
import pytest

from modelrollout import cli
from modelrollout.__main__ import main
from modelrollout.cli import _files
from modelrollout.cli._files import InputError, Progress, read_csv_columns

CLI_DIR = Path(cli.__file__).resolve().parent


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["--version"])
    assert exited.value.code == 0
    assert capsys.readouterr().out.strip() == f"modelrollout {cli.version()}"
    assert cli.version() != "unknown", "installed from pyproject.toml, the version is known"


def parsers(parser: argparse.ArgumentParser, path: str = "modelrollout") -> list[tuple[str, argparse.ArgumentParser]]:
    found = [(path, parser)]
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                found += parsers(sub, f"{path} {name}")
    return found


def test_every_command_and_option_has_help() -> None:
    missing = []
    for path, parser in parsers(cli.build_parser()):
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                helped = {choice.dest for choice in action._choices_actions if choice.help}
                missing += [f"{path} {name}" for name in action.choices if name not in helped]
            elif not action.help or action.help == argparse.SUPPRESS:
                missing.append(f"{path} {'/'.join(action.option_strings) or action.dest}")
    assert not missing, f"no help text: {missing}"


def test_commands_are_listed_not_discovered() -> None:
    source = (CLI_DIR / "__init__.py").read_text()
    assert "pkgutil" not in source
    registering = {
        path.stem
        for path in CLI_DIR.glob("*.py")
        if any(isinstance(n, ast.FunctionDef) and n.name == "register" for n in ast.parse(path.read_text()).body)
    }
    assert {module.__name__.rsplit(".", 1)[1] for module in cli.COMMANDS} == registering


# --- the CSV reader ----------------------------------------------------------------------------------


def write(path: Path, text: str, *, bom: bool = False) -> Path:
    path.write_bytes((b"\xef\xbb\xbf" if bom else b"") + text.encode())
    return path


def table(rows: int, seed: int, shift: float = 0.0) -> str:
    rng = np.random.default_rng(seed)
    lines = ["age,region,prediction,target"]
    for i in range(rows):
        x = rng.normal(40 + shift, 10)
        lines.append(f"{x:.3f},{['eu', 'us'][i % 2]},{x / 100:.4f},{x / 100 + rng.normal(0, 0.1):.4f}")
    return "\n".join(lines) + "\n"


def test_a_byte_order_mark_is_not_part_of_the_first_column(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    reference = write(tmp_path / "ref.csv", table(500, 0), bom=True)
    current = write(tmp_path / "cur.csv", table(500, 1))
    assert list(read_csv_columns(reference)) == ["age", "region", "prediction", "target"]
    assert main(["drift", "--reference", str(reference), "--current", str(current), "--format", "json"]) in (0, 1)
    assert '"name": "age"' in capsys.readouterr().out
    output = tmp_path / "reference.json"
    assert main(["reference", "build", "--data", str(reference), "--output", str(output)]) == 0
    assert '"name": "age"' in output.read_text()
    assert "\ufeff" not in output.read_text()


@pytest.mark.parametrize("suffix", [".csv", ".json"])
def test_an_empty_file_says_so(tmp_path: Path, capsys: pytest.CaptureFixture[str], suffix: str) -> None:
    empty = write(tmp_path / f"empty{suffix}", "")
    other = write(tmp_path / f"other{suffix}", "{}" if suffix == ".json" else "a\n1\n")
    assert main(["drift", "--reference", str(empty), "--current", str(other)]) == 2
    assert capsys.readouterr().err.strip() == f"modelrollout drift: {empty}: file is empty"
    if suffix == ".csv":
        assert main(["reference", "build", "--data", str(empty)]) == 2
        assert capsys.readouterr().err.strip() == f"modelrollout reference build: {empty}: file is empty"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("age,region\n1,a\n2\n", "{path}:3: 1 cells, but the header has 2 columns"),
        ("age,region\n1,a\ninf,b\n", "{path}:3:1: column 'age': 'inf' is not a finite number"),
        ("age,region\n", "{path}:2: no data rows"),
        ("age,age\n1,2\n", "{path}:1:2: duplicate column name 'age'"),
    ],
    ids=["ragged", "infinity", "no-rows", "duplicate"],
)
def test_drift_and_reference_build_report_the_same_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], text: str, message: str
) -> None:
    bad = write(tmp_path / "bad.csv", text)
    good = write(tmp_path / "good.csv", "age,region\n1,a\n")
    expected = message.format(path=bad)
    assert main(["drift", "--reference", str(bad), "--current", str(good)]) == 2
    assert capsys.readouterr().err.strip().startswith(f"modelrollout drift: {expected}")
    assert main(["reference", "build", "--data", str(bad)]) == 2
    assert capsys.readouterr().err.strip().startswith(f"modelrollout reference build: {expected}")


def test_not_utf8_names_the_file(tmp_path: Path) -> None:
    bad = tmp_path / "latin1.csv"
    bad.write_bytes("name\ncaf\xe9\n".encode("latin-1"))
    with pytest.raises(InputError) as error:
        read_csv_columns(bad)
    assert str(error.value).startswith(f"{bad}: not UTF-8 text")


def test_blocks_give_the_same_columns_and_errors_as_cells(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Rows are converted a block at a time; small blocks (every path taken often) change nothing."""
    path = write(tmp_path / "t.csv", "x,y\n" + "".join(f"{i},{'' if i % 7 == 0 else i / 2}\n" for i in range(1, 500)))
    whole = read_csv_columns(path)
    monkeypatch.setattr(_files, "CHUNK_ROWS", 3)
    blocks = read_csv_columns(path)
    for name in ("x", "y"):
        assert np.array_equal(whole[name].values, blocks[name].values, equal_nan=True)
        assert whole[name].missing == blocks[name].missing
    bad = write(tmp_path / "bad.csv", "x\n" + "".join(f"{i}\n" for i in range(1, 10)) + "inf\n1\n")
    with pytest.raises(InputError, match=r":11:1: column 'x': 'inf' is not a finite number"):
        read_csv_columns(bad)


def test_columns_stay_aligned_with_missing_cells(tmp_path: Path) -> None:
    path = write(tmp_path / "t.csv", "prediction,target,segment\n0.1,,a\nNA,0.2,\n0.3,0.4,b\n")
    columns = read_csv_columns(path)
    assert np.array_equal(columns["prediction"].values, [0.1, np.nan, 0.3], equal_nan=True)
    assert np.array_equal(columns["target"].values, [np.nan, 0.2, 0.4], equal_nan=True)
    assert columns["prediction"].numbers.tolist() == [0.1, 0.3]
    assert (columns["segment"].kind, columns["segment"].labels, columns["segment"].missing) == (
        "categorical",
        ["a", "b"],
        1,
    )


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_goes_to_a_terminal_only(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_files, "CHUNK_ROWS", 100)
    monkeypatch.setattr(Progress, "AFTER_SECONDS", 0.0)
    path = write(tmp_path / "t.csv", table(1000, 0))
    terminal, pipe = _Terminal(), io.StringIO()
    read_csv_columns(path, progress=Progress(terminal))
    read_csv_columns(path, progress=Progress(pipe))
    assert "reading " in terminal.getvalue()
    assert "1,000 rows" in terminal.getvalue() or "900 rows" in terminal.getvalue()
    assert terminal.getvalue().endswith("\r\033[K"), "the line is cleared at the end"
    assert pipe.getvalue() == ""
