"""Given / When / Then steps for the e2e scenarios, so a failure says which step of the story broke.

Each step prints itself (pytest shows captured output of a failed test) and, when a step
raises, the error is re-raised with the scenario and step prepended. Steps are context
managers so the code of a step reads as its body:

    story = Scenario("a model that does not load is blocked")
    with story.given("v1 serves all traffic"):
        ...
    with story.when("v2 cannot load its model"):
        ...
    with story.then("the rollout stops at the smoke test"):
        ...
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager


class StepFailedError(AssertionError):
    """An assertion or error inside a step, with the scenario and step it happened in."""


class Scenario:
    """One story; its steps are numbered and timed in the output."""

    def __init__(self, title: str) -> None:
        self.title = title
        self.started = time.monotonic()
        self.steps: list[str] = []
        print(f"\nScenario: {title}", flush=True)

    def given(self, text: str) -> AbstractContextManager[None]:
        return self._step("Given", text)

    def when(self, text: str) -> AbstractContextManager[None]:
        return self._step("When", text)

    def then(self, text: str) -> AbstractContextManager[None]:
        return self._step("Then", text)

    def and_(self, text: str) -> AbstractContextManager[None]:
        return self._step("And", text)

    @contextmanager
    def _step(self, keyword: str, text: str) -> Iterator[None]:
        label = f"{keyword} {text}"
        self.steps.append(label)
        print(f"  [{time.monotonic() - self.started:6.1f}s] {label}", flush=True)
        try:
            yield
        except Exception as error:
            raise StepFailedError(f"{self.title}: step {len(self.steps)} failed: {label}\n{error}") from error
