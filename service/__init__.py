"""Customer Scorer: real-time customer features and scores."""
