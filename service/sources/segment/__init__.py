"""The Segment-compatible HTTP API (Segment's and RudderStack's server-side clients)."""
