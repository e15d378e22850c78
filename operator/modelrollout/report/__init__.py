"""Reports for people: plain text and self-contained HTML with inline SVG, rendered from status alone (pure)."""

from modelrollout.report.experiment import html_report, text_report
from modelrollout.report.svg import effect_plot

__all__ = ["effect_plot", "html_report", "text_report"]
