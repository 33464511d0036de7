"""customer email notifications: the notifications table, the order's contact state

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-01
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _instant(name: str, nullable: bool = True) -> sa.Column[object]:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    with op.batch_alter_table("orders") as batch:
        batch.add_column(sa.Column("contact_state", sa.String(16), nullable=True))
        batch.add_column(sa.Column("contact_state_reason", sa.String(512), nullable=True))
        batch.add_column(_instant("contact_state_at"))
    op.create_table(
        "notifications",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column(
            "order_pk",
            sa.Integer(),
            sa.ForeignKey("orders.id", ondelete="CASCADE", name="fk_notifications_order_pk_orders"),
            nullable=False,
        ),
        sa.Column(
            "shipment_id",
            sa.Integer(),
            sa.ForeignKey(
                "shipments.id", ondelete="CASCADE", name="fk_notifications_shipment_id_shipments"
            ),
            nullable=True,
        ),
        sa.Column(
            "outbox_id",
            sa.Integer(),
            sa.ForeignKey(
                "outbox_events.id",
                ondelete="SET NULL",
                name="fk_notifications_outbox_id_outbox_events",
            ),
            nullable=True,
        ),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("dedupe_key", sa.String(160), nullable=False),
        sa.Column("locale", sa.String(16), nullable=False),
        sa.Column("message_id", sa.String(255), nullable=False),
        sa.Column("payload", sa.JSON(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        _instant("not_before"),
        _instant("next_attempt_at"),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("claimed_by", sa.String(64), nullable=True),
        _instant("claimed_until"),
        sa.Column("subject", sa.String(256), nullable=True),
        sa.Column("last_error", sa.String(512), nullable=True),
        _instant("sent_at"),
        _instant("created_at", nullable=False),
        _instant("updated_at", nullable=False),
        sa.UniqueConstraint("dedupe_key", name="uq_notifications_dedupe_key"),
        sa.UniqueConstraint("message_id", name="uq_notifications_message_id"),
    )
    op.create_index("ix_notifications_next_attempt_at", "notifications", ["next_attempt_at"])
    op.create_index("ix_notifications_order_pk_id", "notifications", ["order_pk", "id"])


def downgrade() -> None:
    op.drop_table("notifications")
    with op.batch_alter_table("orders") as batch:
        for name in ("contact_state_at", "contact_state_reason", "contact_state"):
            batch.drop_column(name)
