"""``pruning-suite new-method NAME``: a package skeleton that passes its own tests at once,
installs, lists and runs; bad names and existing folders are one-line errors."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
import sysconfig
import tomllib
from pathlib import Path

import pytest

from pruning_suite.cli.main import main
from pruning_suite.cli.scaffold import skeleton


def _new(tmp_path: Path, *args: str) -> Path:
    assert main(["new-method", *args, "--dir", str(tmp_path)]) == 0
    return tmp_path / f"pruning-suite-{args[0]}"


def _import(package: Path, module: str):
    init = package / module / "__init__.py"
    spec = importlib.util.spec_from_file_location(module, init, submodule_search_locations=[])
    loaded = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(loaded)
    return loaded


def _pytest(package: Path, python: str = sys.executable, path: bool = True):
    env = {**os.environ, "PYTHONPATH": str(package)} if path else dict(os.environ)
    command = [python, "-m", "pytest", "-q", "-p", "no:cacheprovider"]
    return subprocess.run(
        command, cwd=package, env=env, capture_output=True, text=True, timeout=300
    )


def test_names_follow_the_method_name() -> None:
    names = skeleton("my-method")
    assert (names.distribution, names.module, names.cls, names.test_file) == (
        "pruning-suite-my-method",
        "pruning_suite_my_method",
        "MyMethod",
        "test_my_method.py",
    )
    assert skeleton("2bit").cls == "Method2bit"  # a class name cannot start with a digit
    assert skeleton("x", "weight", training_aware=True).protocol == "digits-convnet-unstructured-s4"


@pytest.mark.parametrize(
    ("args", "granularity", "trains", "passed"),
    [
        ((), "filter", False, 10),
        (("--granularity", "weight", "--training-aware"), "weight", True, 11),
        pytest.param(("--granularity", "weight"), "weight", False, 10, marks=pytest.mark.slow),
        pytest.param(("--training-aware",), "filter", True, 11, marks=pytest.mark.slow),
    ],
)
def test_the_package_passes_its_own_tests_at_once(
    tmp_path, capsys, args, granularity, trains, passed
) -> None:
    package = _new(tmp_path, "my-method", *args)
    assert f"wrote {package}/" in capsys.readouterr().out
    files = sorted(str(p.relative_to(package)) for p in package.rglob("*") if p.is_file())
    assert files == [
        "README.md",
        "pruning_suite_my_method/__init__.py",
        "pyproject.toml",
        "tests/test_my_method.py",
    ]
    project = tomllib.loads((package / "pyproject.toml").read_text())
    assert project["project"]["entry-points"]["pruning_suite"] == {
        "my-method": "pruning_suite_my_method"
    }
    assert project["project"]["dependencies"] == ["pruning-suite"]
    method = _import(package, "pruning_suite_my_method").MyMethod
    assert (method.name, method.granularity, method().schedule().trains) == (
        "my-method",
        granularity,
        trains,
    )
    result = _pytest(package)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    assert f"{passed} passed" in result.stdout


@pytest.mark.parametrize("name", ["My-Method", "my_method", "-x", "../escape", "a b", ""])
def test_a_bad_name_is_a_one_line_error(tmp_path, capsys, name: str) -> None:
    assert main(["new-method", "--dir", str(tmp_path), "--", name]) == 2
    err = capsys.readouterr().err.splitlines()
    assert err[0] == f"error: {name!r} is not a method name"
    assert err[1].startswith("hint: use lower-case letters, digits and '-'")
    assert list(tmp_path.iterdir()) == []


def test_an_installed_name_is_refused(tmp_path, capsys) -> None:
    assert main(["new-method", "l1norm", "--dir", str(tmp_path)]) == 2
    assert capsys.readouterr().err.startswith(
        "error: a plugin named 'l1norm' is already installed\n"
    )


def test_an_existing_folder_is_refused_and_left_alone(tmp_path, capsys) -> None:
    folder = tmp_path / "pruning-suite-mine"
    folder.mkdir()
    (folder / "keep.txt").write_text("mine")
    assert main(["new-method", "mine", "--dir", str(tmp_path)]) == 2
    err = capsys.readouterr().err.splitlines()
    assert err[0] == f"error: {folder} exists; new-method never writes into an existing folder"
    assert [p.name for p in tmp_path.iterdir()] == ["pruning-suite-mine"]  # no staging left
    assert [p.name for p in folder.iterdir()] == ["keep.txt"]


def test_help_lists_new_method(capsys) -> None:
    with pytest.raises(SystemExit):
        main(["--help"])
    assert "new-method" in capsys.readouterr().out


@pytest.mark.slow
def test_the_package_installs_lists_and_runs_in_a_throwaway_venv(tmp_path) -> None:
    """pip install -e into a fresh venv that sees this environment's packages (a .pth), offline."""
    package = _new(tmp_path, "my-method", "--training-aware")
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = str(venv / "bin" / "python")
    purelib = subprocess.run(
        [python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    parent = sysconfig.get_paths()["purelib"]
    Path(purelib, "zz_parent.pth").write_text(f"import site; site.addsitedir({parent!r})\n")
    install = [
        python,
        "-m",
        "pip",
        "install",
        "-q",
        "--no-deps",
        "--no-build-isolation",
        "-e",
        str(package),
    ]
    subprocess.run(install, check=True, capture_output=True, timeout=120)
    cli = [python, "-c", "from pruning_suite.cli.main import main; raise SystemExit(main())"]
    listed = subprocess.run([*cli, "plugins"], capture_output=True, text=True, timeout=120)
    assert "pruning-suite-my-method 0.1.0" in listed.stdout
    out = tmp_path / "submissions"
    run = [
        *cli,
        "run",
        "--plugin",
        "my-method",
        "--protocol",
        "digits-convnet-s4",
        "--smoke",
        "--out",
        str(out),
    ]
    ran = subprocess.run(run, capture_output=True, text=True, timeout=300)
    assert ran.returncode == 0, ran.stderr[-2000:]
    assert len(list((out / "digits-convnet-s4" / "my-method").glob("*.json"))) == 1
    tested = _pytest(package, python, path=False)  # imports the installed package
    assert tested.returncode == 0 and "11 passed" in tested.stdout, tested.stdout[-3000:]
