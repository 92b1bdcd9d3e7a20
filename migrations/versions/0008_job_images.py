"""job_images: each image of an images job (issue 16.2)

A batch's images render in one job whose chunks are groups of images; job_images holds
each image: its chunk, input and output, and its own result (state, error, faces
changed), written by the worker in the transaction that finishes the chunk.
batch_items.image_id names the image an item is (a re-run's item may name an earlier
batch's image: resumed, or still rendering).

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-03 15:30:00
"""
from alembic import op
import sqlalchemy as sa


revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'job_images',
        sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
        sa.Column('job_id', sa.String(length=32), nullable=False),
        sa.Column('chunk_index', sa.Integer(), nullable=False),
        sa.Column('input_path', sa.Text(), nullable=False),
        sa.Column('output_path', sa.Text(), nullable=False),
        sa.Column('state', sa.String(length=16), nullable=False),
        sa.Column('error', sa.Text(), nullable=True),
        sa.Column('faces_changed', sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(['job_id'], ['jobs.id'], ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id'),
    )
    op.create_index('ix_job_images_job_chunk', 'job_images', ['job_id', 'chunk_index'])
    op.add_column('batch_items', sa.Column('image_id', sa.Integer(), nullable=True))   # in place (see 0007)


def downgrade() -> None:
    op.drop_column('batch_items', 'image_id')
    op.drop_index('ix_job_images_job_chunk', 'job_images')
    op.drop_table('job_images')
