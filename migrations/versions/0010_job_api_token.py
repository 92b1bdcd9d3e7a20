"""job_api_token: the API client (token) that submitted each job

The API shows, cancels, retries and serves the output of a client's own jobs only; NULL
for jobs submitted on the farm itself (`farm submit`) and for jobs from before this.
Added and dropped in place (no table rebuild: chunks cascade from jobs).

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-03 16:40:00
"""
from alembic import op
import sqlalchemy as sa


revision = '0010'
down_revision = '0009'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column('jobs', sa.Column('api_token_id', sa.Integer(), nullable=True))
    op.create_index('ix_jobs_api_token_id', 'jobs', ['api_token_id'])


def downgrade() -> None:
    op.drop_index('ix_jobs_api_token_id', table_name='jobs')
    op.drop_column('jobs', 'api_token_id')
