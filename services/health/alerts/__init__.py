"""Alerting: rules turn observations into alerts, alerts go through one lifecycle, notifications leave.

`notice` is the seam between the two halves: the lifecycle (rules, episodes, silences, history)
produces `AlertNotice`s and hands them to a `NotificationSink` inside its own transaction; the
delivery side (outbox, grouping, channels) implements the sink.
"""
