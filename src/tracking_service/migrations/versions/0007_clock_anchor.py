"""clock anchor: the simulated clock every process of a deployment agrees on

A service run faster than real time (`TRACKING_CLOCK_SPEED`, the live demo) stores here the
real instant its clock started from, the simulated instant it read then, and the speed; every
other process and every restart reads the same row (see `tracking_service.clock`).

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-01
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "clock_anchor",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("real_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("simulated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("speed", sa.Float(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("clock_anchor")
