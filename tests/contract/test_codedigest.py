"""The digest of a method's code: what it covers, and that an edit without a version bump changes
the run id (issue 14: an edited plugin overwrote its earlier results)."""

from __future__ import annotations

import hashlib
import importlib
import sys
import textwrap

import pytest

from pruning_suite.contract.codedigest import code_sha256, method_modules

PACKAGE = "digest_pkg"


@pytest.fixture
def package(tmp_path, monkeypatch):
    """A two-module plugin package on sys.path: ``method`` imports the helper ``_helper``."""
    root = tmp_path / PACKAGE
    root.mkdir()
    (root / "__init__.py").write_text("")
    (root / "_helper.py").write_text("def weight(x):\n    return abs(x)\n")
    (root / "method.py").write_text(
        textwrap.dedent(
            """
            import json
            from ._helper import weight
            from pruning_suite import PruningMethod

            class M(PruningMethod):
                name = "digest-m"
                version = "1"
            """
        )
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    yield root
    for name in [n for n in sys.modules if n == PACKAGE or n.startswith(PACKAGE + ".")]:
        del sys.modules[name]


def _load(root):
    for name in [n for n in sys.modules if n == PACKAGE or n.startswith(PACKAGE + ".")]:
        del sys.modules[name]
    return importlib.import_module(f"{PACKAGE}.method").M


def test_the_digest_covers_the_method_module_and_its_package_helpers_only(package) -> None:
    cls = _load(package)
    assert [m.__name__ for m in method_modules(cls)] == [f"{PACKAGE}._helper", f"{PACKAGE}.method"]
    expected = hashlib.sha256()
    for name in ("_helper", "method"):
        source = (package / f"{name}.py").read_bytes()
        expected.update(f"{PACKAGE}.{name}\0{len(source)}\0".encode())
        expected.update(source)
    assert code_sha256(cls) == expected.hexdigest()


def test_editing_a_helper_without_a_version_bump_changes_the_digest(package) -> None:
    before = code_sha256(_load(package))
    (package / "_helper.py").write_text("def weight(x):\n    return x * x\n")
    after = code_sha256(_load(package))
    assert before is not None and after is not None and before != after


def test_a_class_without_source_has_no_digest() -> None:
    namespace: dict = {"__name__": "made_by_exec"}
    exec("class M:\n    pass\n", namespace)
    assert code_sha256(namespace["M"]) is None


def test_the_run_id_hashes_the_method_code_when_recorded() -> None:
    from pruning_suite.record.identity import RunIdentity, run_id

    base = dict(
        protocol_id="p", protocol_version=1, method="m",
        method_version="1", method_config={}, target="t", seed=0, smoke=False,
    )  # fmt: skip
    ids = {
        run_id(RunIdentity(**base)),
        run_id(RunIdentity(**base, method_code="b" * 64)),
        run_id(RunIdentity(**base, method_code="c" * 64)),
    }
    assert len(ids) == 3


def test_the_scratch_baselines_digest_covers_the_method_it_takes_its_architecture_from() -> None:
    from pruning_suite.contract.codedigest import method_code_sha256
    from pruning_suite.contract.plugins import load_registry

    registry = load_registry()
    from_l1 = method_code_sha256(registry.method("scratch", {"arch_from": "l1norm"}))
    from_fpgm = method_code_sha256(registry.method("scratch", {"arch_from": "fpgm"}))
    assert from_l1 != from_fpgm  # another method's code: another run
    own = code_sha256(registry.methods["scratch"].cls)
    l1 = code_sha256(registry.methods["l1norm"].cls)
    assert from_l1 == hashlib.sha256(f"{own}\n{l1}".encode()).hexdigest()
    plain = registry.method("l1norm")
    assert method_code_sha256(plain) == l1  # no delegates: the class's digest, ids unchanged
