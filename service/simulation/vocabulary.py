"""The finite value sets simulated events draw their properties from.

Events store indexes into these tuples; the renderer turns them back into words.
"""

from service.vocabulary import CONSENT_CHANNELS

CURRENCY = "USD"

EMAIL = CONSENT_CHANNELS.index("email")
# Share of new customers granting each channel at signup, in CONSENT_CHANNELS order.
CONSENT_AT_SIGNUP = (0.7, 0.3, 0.4, 0.9, 0.85)

CONSENT_SOURCES = ("signup", "preference_center", "unsubscribe_link")
SIGNUP, PREFERENCE_CENTER, UNSUBSCRIBE_LINK = range(len(CONSENT_SOURCES))

PLATFORMS = ("web", "app")
DEVICES = ("mobile", "desktop", "tablet")
DEVICE_WEIGHTS = (0.55, 0.38, 0.07)

COUNTRIES = ("US", "CA", "GB", "DE", "FR", "AU", "BR", "IN")
COUNTRY_WEIGHTS = (0.45, 0.08, 0.12, 0.1, 0.08, 0.05, 0.07, 0.05)

SIGNUP_CHANNELS = ("organic_search", "paid_search", "social", "referral", "email", "direct")
SIGNUP_CHANNEL_WEIGHTS = (0.3, 0.2, 0.18, 0.1, 0.07, 0.15)

CATEGORIES = (
    "apparel", "shoes", "electronics", "home", "beauty",
    "sports", "toys", "books", "grocery", "garden",
)  # fmt: skip
PRODUCTS_PER_CATEGORY = 400
PRODUCTS = len(CATEGORIES) * PRODUCTS_PER_CATEGORY

TICKET_TOPICS = ("delivery", "product", "billing", "account", "refund")
REFUND_TOPIC = TICKET_TOPICS.index("refund")
# Tickets that follow an order are about anything but a refund; refunds get their own.
ORDER_TICKET_TOPICS = tuple(i for i in range(len(TICKET_TOPICS)) if i != REFUND_TOPIC)

REFUND_REASONS = ("damaged", "not_as_described", "changed_mind", "late_delivery")

CSAT_WEIGHTS = (0.07, 0.08, 0.15, 0.35, 0.35)  # scores 1..5
