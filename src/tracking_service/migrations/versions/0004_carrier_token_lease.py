"""carrier tokens: a refresh lease, and a row that may hold no token

One process at a time asks a carrier's token endpoint for a new token. It announces that with a
lease (holder, until) on the account's row, written in a short transaction of its own and never
held across the HTTP call; a lease that outlives `lease_until` is taken over by the next
process. The row exists before the first token does (the lease lives on it) and after a token
was invalidated, so `access_token` and `expires_at` become nullable.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-01
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("carrier_tokens") as batch:
        batch.alter_column("access_token", existing_type=sa.Text(), nullable=True)
        batch.alter_column("expires_at", existing_type=sa.DateTime(timezone=True), nullable=True)
        batch.add_column(sa.Column("lease_holder", sa.String(64), nullable=True))
        batch.add_column(sa.Column("lease_until", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    op.execute("DELETE FROM carrier_tokens WHERE access_token IS NULL OR expires_at IS NULL")
    with op.batch_alter_table("carrier_tokens") as batch:
        batch.drop_column("lease_until")
        batch.drop_column("lease_holder")
        batch.alter_column("expires_at", existing_type=sa.DateTime(timezone=True), nullable=False)
        batch.alter_column("access_token", existing_type=sa.Text(), nullable=False)
