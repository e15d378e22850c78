"""Results of a smoke run, shaped for a Job's termination message and the operator's status."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

# The kubelet keeps at most this many bytes of /dev/termination-log.
TERMINATION_MESSAGE_LIMIT = 4096


@dataclass(frozen=True)
class CheckResult:
    """One check's verdict. A skipped check has ``passed=False`` but does not fail the run."""

    name: str
    passed: bool
    reason: str
    measured: Mapping[str, Any] = field(default_factory=dict)
    skipped: bool = False

    @property
    def failed(self) -> bool:
        return not self.passed and not self.skipped

    @property
    def verdict(self) -> str:
        return "skipped" if self.skipped else "passed" if self.passed else "failed"

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "passed": self.passed,
            "skipped": self.skipped,
            "reason": self.reason,
            "measured": dict(self.measured),
        }


@dataclass(frozen=True)
class SmokeReport:
    url: str
    checks: tuple[CheckResult, ...]

    @property
    def passed(self) -> bool:
        return not self.failures

    @property
    def failures(self) -> tuple[CheckResult, ...]:
        return tuple(check for check in self.checks if check.failed)

    def check(self, name: str) -> CheckResult:
        for check in self.checks:
            if check.name == name:
                return check
        raise KeyError(name)

    def summary(self) -> str:
        """One line per failure (the first is the root cause), or a pass line; fits a termination message."""
        if self.passed:
            ran = [check.name for check in self.checks if not check.skipped]
            text = f"smoke checks passed: {', '.join(ran)}"
        else:
            text = "\n".join(f"{check.name}: {check.reason}" for check in self.failures)
        return text.encode()[:TERMINATION_MESSAGE_LIMIT].decode(errors="ignore")

    def to_dict(self) -> dict[str, Any]:
        return {"url": self.url, "passed": self.passed, "checks": [check.to_dict() for check in self.checks]}

    def to_text(self) -> str:
        lines = [f"smoke checks against {self.url}: {'PASSED' if self.passed else 'FAILED'}"]
        lines += [f"  {check.verdict.upper():7} {check.name}: {check.reason}" for check in self.checks]
        return "\n".join(lines)
