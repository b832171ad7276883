"""Outbound webhooks (Standard Webhooks v1): subscriptions to the change feed, fan-out of
its changes into deliveries, and signed delivery with retries, all state in PostgreSQL."""
