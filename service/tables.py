"""Imports every domain's tables so `service.db.metadata` is complete (Alembic, tests)."""

from service.access import models as access_models
from service.audit import models as audit_models
from service.changes import models as change_models
from service.events import models as event_models
from service.features import models as feature_models
from service.insights import models as insight_models
from service.modeling import models as modeling_models
from service.offers import models as offer_models
from service.scoring import models as scoring_models
from service.sources import models as source_models
from service.sources.segment import models as segment_models
from service.webhooks import models as webhook_models

__all__ = [
    "access_models",
    "audit_models",
    "change_models",
    "event_models",
    "feature_models",
    "insight_models",
    "modeling_models",
    "offer_models",
    "scoring_models",
    "segment_models",
    "source_models",
    "webhook_models",
]
