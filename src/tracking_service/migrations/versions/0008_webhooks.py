"""webhook endpoints, deliveries, attempts, and the outbox cursor of the fan-out

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-01
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _instant(name: str, nullable: bool = True) -> sa.Column[object]:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "webhook_endpoints",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("url", sa.String(2048), nullable=False),
        sa.Column("description", sa.String(512), nullable=True),
        sa.Column("event_types", sa.JSON(), nullable=True),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("secret", sa.String(128), nullable=False),
        sa.Column("previous_secret", sa.String(128), nullable=True),
        _instant("previous_secret_until"),
        _instant("disabled_at"),
        sa.Column("disabled_reason", sa.String(256), nullable=True),
        _instant("failing_since"),
        sa.Column("start_after_outbox_id", sa.Integer(), nullable=False),
        _instant("created_at", nullable=False),
        _instant("updated_at", nullable=False),
    )
    op.create_table(
        "webhook_deliveries",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column(
            "endpoint_id",
            sa.Integer(),
            sa.ForeignKey(
                "webhook_endpoints.id",
                ondelete="CASCADE",
                name="fk_webhook_deliveries_endpoint_id_webhook_endpoints",
            ),
            nullable=False,
        ),
        sa.Column(
            "outbox_id",
            sa.Integer(),
            sa.ForeignKey(
                "outbox_events.id",
                ondelete="CASCADE",
                name="fk_webhook_deliveries_outbox_id_outbox_events",
            ),
            nullable=True,
        ),
        sa.Column("webhook_id", sa.String(64), nullable=False),
        sa.Column("event_type", sa.String(64), nullable=False),
        sa.Column("stream", sa.String(64), nullable=True),
        sa.Column("sequence", sa.Integer(), nullable=True),
        sa.Column("payload", sa.JSON(), nullable=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        _instant("next_attempt_at"),
        sa.Column("claimed_by", sa.String(64), nullable=True),
        _instant("claimed_until"),
        _instant("last_attempt_at"),
        sa.Column("last_status_code", sa.Integer(), nullable=True),
        sa.Column("last_error", sa.String(512), nullable=True),
        _instant("created_at", nullable=False),
        _instant("updated_at", nullable=False),
    )
    op.create_index(
        "ix_webhook_deliveries_next_attempt_at", "webhook_deliveries", ["next_attempt_at"]
    )
    op.create_index(
        "ix_webhook_deliveries_endpoint_id_id", "webhook_deliveries", ["endpoint_id", "id"]
    )
    op.create_index(
        "ix_webhook_deliveries_endpoint_id_stream_sequence",
        "webhook_deliveries",
        ["endpoint_id", "stream", "sequence"],
    )
    op.create_table(
        "webhook_attempts",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column(
            "delivery_id",
            sa.Integer(),
            sa.ForeignKey(
                "webhook_deliveries.id",
                ondelete="CASCADE",
                name="fk_webhook_attempts_delivery_id_webhook_deliveries",
            ),
            nullable=False,
        ),
        sa.Column("attempt", sa.Integer(), nullable=False),
        _instant("at", nullable=False),
        sa.Column("status_code", sa.Integer(), nullable=True),
        sa.Column("latency_ms", sa.Float(), nullable=False),
        sa.Column("response_head", sa.String(1024), nullable=True),
        sa.Column("error", sa.String(512), nullable=True),
    )
    op.create_index("ix_webhook_attempts_delivery_id", "webhook_attempts", ["delivery_id"])
    op.create_table(
        "outbox_cursors",
        sa.Column("name", sa.String(64), primary_key=True),
        sa.Column("last_id", sa.Integer(), nullable=False),
        _instant("updated_at", nullable=False),
    )


def downgrade() -> None:
    for table in ("outbox_cursors", "webhook_attempts", "webhook_deliveries", "webhook_endpoints"):
        op.drop_table(table)
