"""batches: many targets in one command (issue 16)

A batch row holds what was asked once (options, root, output folder, idempotency key);
batch_items holds each target: its output, the job that renders it (NULL for an item
refused at submit or skipped), the hashes of its input and options (resume), and the
error that refused it. jobs.batch_id groups a batch's jobs.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-07 11:20:00
"""
from alembic import op
import sqlalchemy as sa


revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'batches',
        sa.Column('id', sa.String(length=32), nullable=False),
        sa.Column('created_at', sa.DateTime(), nullable=False),
        sa.Column('options', sa.JSON(), nullable=False),
        sa.Column('root', sa.Text(), nullable=False),
        sa.Column('output_dir', sa.Text(), nullable=True),
        sa.Column('idempotency_key', sa.String(length=255), nullable=True),
        sa.Column('token_id', sa.Integer(), nullable=True),
        sa.PrimaryKeyConstraint('id'),
    )
    op.create_table(
        'batch_items',
        sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
        sa.Column('batch_id', sa.String(length=32), nullable=False),
        sa.Column('position', sa.Integer(), nullable=False),
        sa.Column('input_path', sa.Text(), nullable=False),
        sa.Column('output_path', sa.Text(), nullable=True),
        sa.Column('kind', sa.String(length=16), nullable=False),
        sa.Column('job_id', sa.String(length=32), nullable=True),
        sa.Column('input_sha256', sa.String(length=64), nullable=True),
        sa.Column('options_sha256', sa.String(length=64), nullable=True),
        sa.Column('error', sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(['batch_id'], ['batches.id'], ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id'),
    )
    op.create_index('ix_batch_items_batch_id', 'batch_items', ['batch_id'])
    op.create_index('ix_batch_items_output_path', 'batch_items', ['output_path'])
    op.add_column('jobs', sa.Column('batch_id', sa.String(length=32), nullable=True))   # in place (see downgrade)
    op.create_index('ix_jobs_batch_id', 'jobs', ['batch_id'])


def downgrade() -> None:
    # Not batch mode: on SQLite it would rebuild `jobs` (copy, drop, rename), and dropping
    # the old table with foreign keys on deletes every chunk and event row (ON DELETE
    # CASCADE). SQLite >= 3.35 drops a column in place.
    op.drop_index('ix_jobs_batch_id', 'jobs')
    op.drop_column('jobs', 'batch_id')
    op.drop_index('ix_batch_items_output_path', 'batch_items')
    op.drop_index('ix_batch_items_batch_id', 'batch_items')
    op.drop_table('batch_items')
    op.drop_table('batches')
