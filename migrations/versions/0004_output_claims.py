"""output_claims: which API token owns an output path on storage

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-02 08:20:00
"""
from alembic import op
import sqlalchemy as sa


revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'output_claims',
        sa.Column('path_sha256', sa.String(length=64), nullable=False),
        sa.Column('path', sa.Text(), nullable=False),
        sa.Column('token_id', sa.Integer(), nullable=False),
        sa.Column('job_id', sa.String(length=32), nullable=True),
        sa.Column('created_at', sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint('path_sha256'),
    )


def downgrade() -> None:
    op.drop_table('output_claims')
