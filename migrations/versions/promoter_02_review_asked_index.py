"""responses: a partial index of the responses offered a review (the dashboard's promoter-loop counts)

The counts read only those few rows instead of every promoter of the page's range.

Revision ID: promoter_02
Revises: scale_10m_01
Create Date: 2026-12-04 16:25:00.000000

"""
import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = 'promoter_02'
down_revision = 'scale_10m_01'
branch_labels = None
depends_on = None

ASKED = sa.text('review_asked_at IS NOT NULL')


def upgrade():
    with op.batch_alter_table('responses', schema=None) as batch_op:
        batch_op.create_index(
            'ix_responses_review_asked', ['project_id', 'created_at'], unique=False,
            postgresql_where=ASKED, sqlite_where=ASKED,
        )


def downgrade():
    with op.batch_alter_table('responses', schema=None) as batch_op:
        batch_op.drop_index('ix_responses_review_asked')
