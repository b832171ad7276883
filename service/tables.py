"""Imports every domain's tables so `service.db.metadata` is complete (Alembic, tests)."""

from service.access import models as access_models
from service.events import models as event_models
from service.features import models as feature_models

__all__ = ["access_models", "event_models", "feature_models"]
