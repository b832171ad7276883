"""Ways in besides `POST /v1/events`: each maps its payload to events and stores them
through the same write path (`service.events.service`); what cannot be used is
dead-lettered with its reason."""
