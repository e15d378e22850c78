"""The DriftMonitor's decisions: what to ask Prometheus, what the answers mean, and who to tell.

Everything here is pure. One module per concept, in the order an evaluation uses them:
:mod:`.planning` (the queries and their inputs), :mod:`.binning` (live counts on the reference's
bins), :mod:`.evaluation` (scores, verdicts, data quality, performance), :mod:`.machine` (the
decision, and the DriftMonitor's life cycle) and :mod:`.alerts` (alerts and actions on the target).
This package exports what the engine, the CLI and the tests use.
"""

from modelrollout.core.drift.alerts import (
    action_done,
    action_failed,
    action_pending,
    alert_cancelled,
    alert_delivered,
    alert_failed,
    alert_payload,
    delivery_due,
    target_event,
)
from modelrollout.core.drift.binning import live_counts
from modelrollout.core.drift.evaluation import Evaluation, evaluate
from modelrollout.core.drift.machine import decide, evaluation_due
from modelrollout.core.drift.outcomes import Decision, Failure
from modelrollout.core.drift.planning import (
    Answers,
    DriftQuery,
    QueryName,
    parse_reference,
    plan_queries,
    revision_label,
    thresholds_of,
)

__all__ = [
    "Answers",
    "Decision",
    "DriftQuery",
    "Evaluation",
    "Failure",
    "QueryName",
    "action_done",
    "action_failed",
    "action_pending",
    "alert_cancelled",
    "alert_delivered",
    "alert_failed",
    "alert_payload",
    "decide",
    "delivery_due",
    "evaluate",
    "evaluation_due",
    "live_counts",
    "parse_reference",
    "plan_queries",
    "revision_label",
    "target_event",
    "thresholds_of",
]
