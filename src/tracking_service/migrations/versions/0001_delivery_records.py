"""delivery records: the lane history

Revision ID: 0001
Revises:
Create Date: 2026-11-23
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "delivery_records",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("source", sa.String(32), nullable=False),
        sa.Column("external_id", sa.String(128), nullable=False),
        sa.Column("order_time", sa.DateTime(timezone=True), nullable=False),
        sa.Column("handoff_time", sa.DateTime(timezone=True), nullable=True),
        sa.Column("delivered_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("origin_id", sa.String(64), nullable=True),
        sa.Column("origin_country", sa.String(2), nullable=False),
        sa.Column("origin_subdivision", sa.String(16), nullable=True),
        sa.Column("origin_postal_code", sa.String(16), nullable=True),
        sa.Column("dest_country", sa.String(2), nullable=False),
        sa.Column("dest_subdivision", sa.String(16), nullable=True),
        sa.Column("dest_postal_code", sa.String(16), nullable=True),
        sa.Column("carrier", sa.String(32), nullable=True),
        sa.Column("service", sa.String(64), nullable=True),
        sa.Column("promised_date", sa.Date(), nullable=True),
        sa.Column("origin_lat", sa.Float(), nullable=True),
        sa.Column("origin_lng", sa.Float(), nullable=True),
        sa.Column("dest_lat", sa.Float(), nullable=True),
        sa.Column("dest_lng", sa.Float(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("source", "external_id", name="uq_delivery_records_source_external"),
    )
    op.create_index("ix_delivery_records_delivered_at", "delivery_records", ["delivered_at"])


def downgrade() -> None:
    op.drop_index("ix_delivery_records_delivered_at", table_name="delivery_records")
    op.drop_table("delivery_records")
