"""delivery records keep the IANA zones of origin and destination

Local dates (hand-off day at the origin, delivery day at the destination) need the zone of each
place; an instant stored in UTC alone cannot give them back.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-23
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("delivery_records") as batch:
        batch.add_column(sa.Column("origin_tz", sa.String(64), nullable=True))
        batch.add_column(sa.Column("dest_tz", sa.String(64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("delivery_records") as batch:
        batch.drop_column("dest_tz")
        batch.drop_column("origin_tz")
