from __future__ import annotations

from pathlib import Path

import pytest

from scheduler.domain import Instance, Solution
from scheduler.io import parse_instance, parse_solution
from tests.scheduler.builders import example_instance_json, example_solution_json, write_examples


@pytest.fixture
def example_instance() -> Instance:
    return parse_instance(example_instance_json())


@pytest.fixture
def example_solution(example_instance: Instance) -> Solution:
    return parse_solution(example_solution_json(), example_instance)


@pytest.fixture
def example_files(tmp_path: Path) -> tuple[Path, Path]:
    """(instance path, solution path) of the worked example, written into a temporary folder."""
    return write_examples(tmp_path)
