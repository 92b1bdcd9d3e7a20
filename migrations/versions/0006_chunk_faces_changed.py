"""chunk_faces_changed: how many frames and faces each chunk's worker changed

Finalize labels an output "faces altered" only when some chunk replaced a face; NULL
for chunks rendered before the counts were kept (labelled as before).

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-06 10:00:00
"""
from alembic import op
import sqlalchemy as sa


revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('chunks') as batch:
        batch.add_column(sa.Column('frames_changed', sa.Integer(), nullable=True))
        batch.add_column(sa.Column('faces_changed', sa.Integer(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('chunks') as batch:
        batch.drop_column('faces_changed')
        batch.drop_column('frames_changed')
