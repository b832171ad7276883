"""Shopify webhooks: orders, refunds and customers (with marketing consent)."""
