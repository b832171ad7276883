"""Next-best-offer: the offer catalog, the decision policy and the decision log."""
