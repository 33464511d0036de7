"""Database tables by area; importing this package registers them all on `SQLModel.metadata`.

Tables arrive with the features that need them; each change comes with an Alembic revision in
`migrations/versions/`.
"""

from tracking_service.models.api_keys import ApiKey
from tracking_service.models.base import NAMING_CONVENTION, UTCDateTime, utcnow
from tracking_service.models.carriers import (
    CarrierCall,
    CarrierQuota,
    CarrierRateWindow,
    CarrierToken,
)
from tracking_service.models.clock import ClockAnchor
from tracking_service.models.history import DELIVERY_RECORDS, DeliveryRecord
from tracking_service.models.notifications import Notification
from tracking_service.models.tracking import (
    IdempotencyRecord,
    Order,
    OutboxEvent,
    PromiseRevision,
    Shipment,
    TrackingEventRecord,
)
from tracking_service.models.webhooks import (
    OutboxCursor,
    WebhookAttempt,
    WebhookDelivery,
    WebhookEndpoint,
)

__all__ = [
    "DELIVERY_RECORDS",
    "NAMING_CONVENTION",
    "ApiKey",
    "CarrierCall",
    "CarrierQuota",
    "CarrierRateWindow",
    "CarrierToken",
    "ClockAnchor",
    "DeliveryRecord",
    "IdempotencyRecord",
    "Notification",
    "Order",
    "OutboxCursor",
    "OutboxEvent",
    "PromiseRevision",
    "Shipment",
    "TrackingEventRecord",
    "UTCDateTime",
    "WebhookAttempt",
    "WebhookDelivery",
    "WebhookEndpoint",
    "utcnow",
]
