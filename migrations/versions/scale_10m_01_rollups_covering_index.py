"""rollups: the report's read index covers the counts (an index-only scan instead of a heap page per row)

At 10M responses the rollups hold millions of rows, and a day's totals and plan counts sit among that
day's rows of every other property: reading a year of them touched ~28,000 heap pages (0.3-1.1 s of the
dashboard). With the counted columns in the index (PostgreSQL INCLUDE) the read is an index-only scan.

Revision ID: scale_10m_01
Revises: sources_01
Create Date: 2026-12-04 16:00:00.000000

"""
from alembic import op

# revision identifiers, used by Alembic.
revision = 'scale_10m_01'
down_revision = 'sources_01'
branch_labels = None
depends_on = None

COVERED = ['survey_id', 'channel', 'prop_value', 'promoters', 'passives', 'detractors', 'comments']


def upgrade():
    with op.batch_alter_table('response_rollups', schema=None) as batch_op:
        batch_op.drop_index('ix_response_rollups_key_day')
        batch_op.create_index(
            'ix_response_rollups_key_day', ['project_id', 'prop_key', 'day'], unique=False,
            postgresql_include=COVERED,
        )


def downgrade():
    with op.batch_alter_table('response_rollups', schema=None) as batch_op:
        batch_op.drop_index('ix_response_rollups_key_day')
        batch_op.create_index('ix_response_rollups_key_day', ['project_id', 'prop_key', 'day'], unique=False)
