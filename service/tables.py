"""Imports every domain's tables so `service.db.metadata` is complete (Alembic, tests)."""

from service.access import models as access_models
from service.events import models as event_models
from service.features import models as feature_models
from service.offers import models as offer_models
from service.training import models as training_models

__all__ = ["access_models", "event_models", "feature_models", "offer_models", "training_models"]
