"""chunk_people_changed: with --map, how many frames each mapping's person was changed in

A JSON object per chunk, {"0": frames, "1": frames, ...} keyed by the mapping's index
(then --map-others'); NULL for chunks without --map or rendered before it was kept.
Added and dropped in place (no table rebuild: chunks cascade from jobs).

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-03 16:00:00
"""
from alembic import op
import sqlalchemy as sa


revision = '0009'
down_revision = '0008'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column('chunks', sa.Column('people_changed', sa.JSON(), nullable=True))


def downgrade() -> None:
    op.drop_column('chunks', 'people_changed')
