"""Telemetry: the event log, `ragcli stats` and its report, feedback, cost accounting, OpenTelemetry.

The app layer uses `ragcli.telemetry.facade.Telemetry`; the modules behind it are
events (SQLite event log: schema, migrations, retention, privacy), stats (the figures and the threshold
check), cost (the price table), report and png (Markdown + a dependency-free histogram PNG) and otel
(spans emitted after the fact). Importing this package loads nothing heavy: numpy is imported by stats
and opentelemetry only when an exporter is configured.
"""
