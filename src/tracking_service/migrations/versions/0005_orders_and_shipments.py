"""orders, shipments, tracking events, outbox, idempotency keys, API keys, carrier usage

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-01
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _instant(name: str, nullable: bool = True) -> sa.Column[object]:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "api_keys",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("name", sa.String(128), nullable=False),
        sa.Column("prefix", sa.String(16), nullable=False),
        sa.Column("key_hash", sa.String(64), nullable=False),
        _instant("created_at", nullable=False),
        _instant("last_used_at"),
        _instant("revoked_at"),
        sa.UniqueConstraint("key_hash", name="uq_api_keys_key_hash"),
    )
    op.create_table(
        "orders",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("order_id", sa.String(128), nullable=False),
        _instant("placed_at", nullable=False),
        sa.Column("origin", sa.String(64), nullable=False),
        sa.Column("option", sa.String(64), nullable=False),
        sa.Column("dest_country", sa.String(2), nullable=False),
        sa.Column("dest_postal_code", sa.String(16), nullable=False),
        sa.Column("dest_subdivision", sa.String(16), nullable=True),
        sa.Column("dest_city", sa.String(128), nullable=True),
        sa.Column("customer_name", sa.String(256), nullable=True),
        sa.Column("customer_email", sa.String(320), nullable=True),
        sa.Column("customer_phone", sa.String(64), nullable=True),
        sa.Column("customer_street", sa.String(512), nullable=True),
        sa.Column("locale", sa.String(16), nullable=True),
        sa.Column("items", sa.JSON(), nullable=False),
        sa.Column("promise_earliest", sa.Date(), nullable=False),
        sa.Column("promise_latest", sa.Date(), nullable=False),
        sa.Column("promise_confidence", sa.Float(), nullable=False),
        sa.Column("promise_basis", sa.String(16), nullable=False),
        sa.Column("promise_detail", sa.JSON(), nullable=False),
        sa.Column("status", sa.String(32), nullable=False),
        sa.Column("sequence", sa.Integer(), nullable=False),
        _instant("cancelled_at"),
        _instant("created_at", nullable=False),
        _instant("updated_at", nullable=False),
        sa.UniqueConstraint("order_id", name="uq_orders_order_id"),
    )
    op.create_index("ix_orders_updated_at_id", "orders", ["updated_at", "id"])
    op.create_index("ix_orders_status", "orders", ["status"])
    op.create_table(
        "shipments",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column(
            "order_pk",
            sa.Integer(),
            sa.ForeignKey("orders.id", ondelete="CASCADE", name="fk_shipments_order_pk_orders"),
            nullable=False,
        ),
        sa.Column("carrier", sa.String(32), nullable=False),
        sa.Column("tracking_number", sa.String(64), nullable=False),
        sa.Column("service", sa.String(64), nullable=True),
        sa.Column("items", sa.JSON(), nullable=False),
        sa.Column("tracking_token", sa.String(64), nullable=False),
        sa.Column("status", sa.String(32), nullable=False),
        sa.Column("raw_status_code", sa.String(64), nullable=True),
        sa.Column("raw_status_description", sa.String(512), nullable=True),
        _instant("status_changed_at"),
        sa.Column("estimate_earliest", sa.Date(), nullable=True),
        sa.Column("estimate_latest", sa.Date(), nullable=True),
        sa.Column("estimate_source", sa.String(16), nullable=True),
        sa.Column("delayed", sa.Boolean(), nullable=False),
        sa.Column("delay_reason", sa.String(32), nullable=True),
        _instant("delayed_since"),
        _instant("handed_off_at"),
        _instant("delivered_at"),
        _instant("last_event_at"),
        _instant("next_poll_at"),
        sa.Column("claimed_by", sa.String(64), nullable=True),
        _instant("claimed_until"),
        _instant("last_polled_at"),
        sa.Column("poll_failures", sa.Integer(), nullable=False),
        sa.Column("last_poll_error", sa.String(512), nullable=True),
        sa.Column("sequence", sa.Integer(), nullable=False),
        _instant("cancelled_at"),
        _instant("expired_at"),
        _instant("created_at", nullable=False),
        _instant("updated_at", nullable=False),
        sa.UniqueConstraint("carrier", "tracking_number", name="uq_shipments_carrier_number"),
        sa.UniqueConstraint("tracking_token", name="uq_shipments_tracking_token"),
    )
    op.create_index("ix_shipments_next_poll_at", "shipments", ["next_poll_at"])
    op.create_index("ix_shipments_order_pk", "shipments", ["order_pk"])
    op.create_index("ix_shipments_updated_at_id", "shipments", ["updated_at", "id"])
    op.create_index("ix_shipments_status", "shipments", ["status"])
    op.create_table(
        "tracking_events",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column(
            "shipment_id",
            sa.Integer(),
            sa.ForeignKey(
                "shipments.id", ondelete="CASCADE", name="fk_tracking_events_shipment_id_shipments"
            ),
            nullable=False,
        ),
        sa.Column("dedupe_key", sa.String(128), nullable=False),
        _instant("occurred_at", nullable=False),
        sa.Column("status", sa.String(32), nullable=True),
        sa.Column("raw_code", sa.String(64), nullable=False),
        sa.Column("description", sa.String(512), nullable=False),
        sa.Column("city", sa.String(128), nullable=True),
        sa.Column("region", sa.String(64), nullable=True),
        sa.Column("postal_code", sa.String(16), nullable=True),
        sa.Column("country", sa.String(2), nullable=True),
        sa.Column("source", sa.String(16), nullable=False),
        _instant("created_at", nullable=False),
        sa.UniqueConstraint("shipment_id", "dedupe_key", name="uq_tracking_events_dedupe"),
    )
    op.create_index(
        "ix_tracking_events_shipment_id_occurred_at",
        "tracking_events",
        ["shipment_id", "occurred_at"],
    )
    op.create_table(
        "outbox_events",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("event_id", sa.String(64), nullable=False),
        sa.Column("event_type", sa.String(64), nullable=False),
        sa.Column("stream", sa.String(64), nullable=False),
        sa.Column("sequence", sa.Integer(), nullable=False),
        sa.Column(
            "shipment_id",
            sa.Integer(),
            sa.ForeignKey(
                "shipments.id", ondelete="SET NULL", name="fk_outbox_events_shipment_id_shipments"
            ),
            nullable=True,
        ),
        sa.Column(
            "order_pk",
            sa.Integer(),
            sa.ForeignKey(
                "orders.id", ondelete="SET NULL", name="fk_outbox_events_order_pk_orders"
            ),
            nullable=True,
        ),
        _instant("occurred_at", nullable=False),
        sa.Column("payload", sa.JSON(), nullable=False),
        _instant("created_at", nullable=False),
        sa.UniqueConstraint("event_id", name="uq_outbox_events_event_id"),
        sa.UniqueConstraint("stream", "sequence", name="uq_outbox_events_stream_sequence"),
    )
    op.create_table(
        "idempotency_keys",
        sa.Column("scope", sa.String(128), primary_key=True),
        sa.Column("key", sa.String(255), primary_key=True),
        sa.Column("request_hash", sa.String(64), nullable=False),
        sa.Column("status_code", sa.Integer(), nullable=False),
        sa.Column("response_body", sa.JSON(), nullable=False),
        _instant("created_at", nullable=False),
    )
    op.create_table(
        "carrier_calls",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("carrier", sa.String(32), nullable=False),
        sa.Column("endpoint", sa.String(64), nullable=False),
        sa.Column("outcome", sa.String(32), nullable=False),
        sa.Column("latency_ms", sa.Float(), nullable=False),
        sa.Column("numbers", sa.Integer(), nullable=False),
        _instant("at", nullable=False),
    )
    op.create_index("ix_carrier_calls_carrier_at", "carrier_calls", ["carrier", "at"])
    op.create_table(
        "carrier_quotas",
        sa.Column("carrier", sa.String(32), primary_key=True),
        sa.Column("day", sa.Date(), primary_key=True),
        sa.Column("calls", sa.Integer(), nullable=False),
    )


def downgrade() -> None:
    for table in (
        "carrier_quotas",
        "carrier_calls",
        "idempotency_keys",
        "outbox_events",
        "tracking_events",
        "shipments",
        "orders",
        "api_keys",
    ):
        op.drop_table(table)
