"""the promise ledger: the model's promise on the order, and every re-estimate after it

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-01
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _instant(name: str, nullable: bool = True) -> sa.Column[object]:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    with op.batch_alter_table("orders") as batch:
        batch.add_column(_instant("promise_made_at"))
        batch.add_column(sa.Column("promise_level", sa.Float(), nullable=True))
        batch.add_column(sa.Column("promise_distribution", sa.JSON(), nullable=True))
        batch.add_column(sa.Column("dest_tz", sa.String(64), nullable=True))
    op.create_table(
        "promise_revisions",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column(
            "order_pk",
            sa.Integer(),
            sa.ForeignKey(
                "orders.id", ondelete="CASCADE", name="fk_promise_revisions_order_pk_orders"
            ),
            nullable=False,
        ),
        sa.Column(
            "shipment_id",
            sa.Integer(),
            sa.ForeignKey(
                "shipments.id",
                ondelete="CASCADE",
                name="fk_promise_revisions_shipment_id_shipments",
            ),
            nullable=True,
        ),
        _instant("at", nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("earliest", sa.Date(), nullable=True),
        sa.Column("latest", sa.Date(), nullable=True),
        sa.Column("source", sa.String(32), nullable=True),
        _instant("created_at", nullable=False),
    )
    op.create_index("ix_promise_revisions_order_pk_at", "promise_revisions", ["order_pk", "at"])
    op.create_index("ix_orders_placed_at", "orders", ["placed_at"])


def downgrade() -> None:
    op.drop_index("ix_orders_placed_at", "orders")
    op.drop_table("promise_revisions")
    with op.batch_alter_table("orders") as batch:
        for name in ("dest_tz", "promise_distribution", "promise_level", "promise_made_at"):
            batch.drop_column(name)
