"""Stripe webhooks: completed checkouts and charges as orders, refunds."""
