"""The NATS JetStream consumer: a durable pull consumer feeding the one write path."""
