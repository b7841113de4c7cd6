"""Task kinds, one module each, in one registry keyed by name (see `edgekit.tasks.base`).

Adding a task kind: a module with a `Task` subclass, and its line in `TASKS`.
"""

from __future__ import annotations

from edgekit.errors import InputError
from edgekit.tasks.anomaly import Anomaly
from edgekit.tasks.base import Task
from edgekit.tasks.classification import Classification
from edgekit.tasks.detection import Detection
from edgekit.tasks.generation import Generation
from edgekit.tasks.regression import Regression

TASKS: dict[str, Task] = {
    "classification": Classification(),
    "detection": Detection(),
    "anomaly": Anomaly(),
    "regression": Regression(),
    "generation": Generation(),
}


def task_kind(name: str) -> Task:
    """The task object named `name`.

    Raises:
        InputError: no such task, naming the valid ones.
    """
    try:
        return TASKS[str(name)]
    except KeyError:
        raise InputError(f"task {name!r}", expected=f"one of {', '.join(TASKS)}", found=repr(name)) from None


__all__ = ["TASKS", "Task", "task_kind"]
