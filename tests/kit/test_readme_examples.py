"""README's "Adding a method" examples (a one-shot and a training-aware method, and the kit's test
class) run as written and pass the conformance kit."""

from __future__ import annotations

import re
from pathlib import Path

from pruning_suite.testing import MethodConformance, check_method

README = Path(__file__).parents[2] / "README.md"


def _examples() -> dict:
    section = (
        README.read_text(encoding="utf-8").split("## Adding a method\n", 1)[1].split("\n## ", 1)[0]
    )
    blocks = re.findall(r"```python\n(.+?)```", section, flags=re.S)
    assert len(blocks) == 3  # one-shot, training-aware, the kit
    namespace: dict = {}
    exec(compile("\n".join(blocks), str(README), "exec"), namespace)  # noqa: S102 -- our README
    return namespace


def test_the_readme_methods_pass_the_kit() -> None:
    found = _examples()
    one_shot, trains = found["LpNorm"], found["SlimmingLike"]
    assert (
        issubclass(found["TestLpNorm"], MethodConformance)
        and found["TestLpNorm"].method is one_shot
    )
    assert found["register_methods"]() == [one_shot]
    assert (one_shot().schedule().trains, trains().schedule().trains) == (False, True)
    check_method(one_shot, {"p": 1.0})
    check_method(trains)
