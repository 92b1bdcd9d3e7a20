"""job_consent_and_provenance: a job's consent reference and what its output was signed with

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-02 09:10:00
"""
from alembic import op
import sqlalchemy as sa


revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('jobs') as batch:
        batch.add_column(sa.Column('consent', sa.Text(), nullable=True))
        batch.add_column(sa.Column('provenance', sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('jobs') as batch:
        batch.drop_column('provenance')
        batch.drop_column('consent')
