"""The insights dashboard: one static page at /dashboard that reads the insights API."""
