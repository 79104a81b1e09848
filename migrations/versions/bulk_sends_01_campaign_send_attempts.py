"""bulk sends: a request's campaign and its temporary send failures so far

Revision ID: bulk_sends_01
Revises: promoter_02
Create Date: 2026-12-04 15:30:00.000000

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = 'bulk_sends_01'
down_revision = 'promoter_02'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('survey_requests', schema=None) as batch_op:
        batch_op.add_column(sa.Column('campaign', sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column('send_attempts', sa.SmallInteger(), server_default='0', nullable=False))
        batch_op.create_index(
            'ix_survey_requests_project_campaign', ['project_id', 'campaign', 'status'], unique=False
        )


def downgrade():
    with op.batch_alter_table('survey_requests', schema=None) as batch_op:
        batch_op.drop_index('ix_survey_requests_project_campaign')
        batch_op.drop_column('send_attempts')
        batch_op.drop_column('campaign')
