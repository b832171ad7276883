"""Response shape of the customer profile."""

from datetime import datetime
from typing import Any

from pydantic import BaseModel

from service.features.schemas import Consent


class Profile(BaseModel):
    customer_id: str
    first_seen_at: datetime
    last_seen_at: datetime
    traits: dict[str, Any]
    consent: Consent
