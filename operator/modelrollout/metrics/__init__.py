"""Metric providers: one small interface (``MetricSource``), Prometheus behind it, and a fake for tests."""

from modelrollout.metrics.fake import FakeMetricSource
from modelrollout.metrics.prometheus import PrometheusSettings, PrometheusSource
from modelrollout.metrics.source import MetricError, MetricSource, NoDataError, QueryError, Sample
from modelrollout.metrics.templates import TemplateError, placeholders, render

__all__ = [
    "FakeMetricSource",
    "MetricError",
    "MetricSource",
    "NoDataError",
    "PrometheusSettings",
    "PrometheusSource",
    "QueryError",
    "Sample",
    "TemplateError",
    "placeholders",
    "render",
]
