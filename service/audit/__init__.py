"""The audit trail: who changed keys, offers, webhooks, sources and models, and who erased
or exported a customer."""
