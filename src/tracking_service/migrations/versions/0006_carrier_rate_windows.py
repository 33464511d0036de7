"""carrier rate windows: per-second carrier limits shared by every process

Each process takes permits for a carrier in batches from the current window's row with one
atomic upsert (see `tracking_service.carrier_quotas`); rows of past windows are deleted.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-01
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "carrier_rate_windows",
        sa.Column("carrier", sa.String(32), primary_key=True),
        sa.Column("window_start", sa.BigInteger(), primary_key=True),
        sa.Column("requested", sa.Integer(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("carrier_rate_windows")
