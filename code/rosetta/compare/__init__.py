"""The comparison: tables, charts and verdicts computed from the framework chapters' records."""
