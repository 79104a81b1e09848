"""promoter loop: review/referral links per project or survey, and the asked/consented/clicked instants

Revision ID: promoter_01
Revises: users_mgmt_01
Create Date: 2026-12-04 15:10:00.000000

"""
from alembic import op
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

import survey_service.models

# revision identifiers, used by Alembic.
revision = 'promoter_01'
down_revision = 'users_mgmt_01'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('promoter_loops',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('project_id', sa.Integer(), nullable=False),
    sa.Column('survey_id', sa.Integer(), nullable=True),
    sa.Column('enabled', sa.Boolean(), nullable=False),
    sa.Column('targets', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.Column('updated_at', survey_service.models.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['project_id'], ['projects.id'], name=op.f('fk_promoter_loops_project_id_projects'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['survey_id'], ['surveys.id'], name=op.f('fk_promoter_loops_survey_id_surveys'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_promoter_loops')),
    sa.UniqueConstraint('project_id', 'survey_id', name='uq_promoter_loops_project_survey')
    )
    with op.batch_alter_table('promoter_loops', schema=None) as batch_op:
        batch_op.create_index(
            'uq_promoter_loops_project_default',
            ['project_id'],
            unique=True,
            sqlite_where=sa.text('survey_id IS NULL'),
            postgresql_where=sa.text('survey_id IS NULL'),
        )
    with op.batch_alter_table('responses', schema=None) as batch_op:
        batch_op.add_column(sa.Column('review_asked_at', survey_service.models.UTCDateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('review_consented_at', survey_service.models.UTCDateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('review_link_clicked_at', survey_service.models.UTCDateTime(timezone=True), nullable=True))


def downgrade():
    with op.batch_alter_table('responses', schema=None) as batch_op:
        batch_op.drop_column('review_link_clicked_at')
        batch_op.drop_column('review_consented_at')
        batch_op.drop_column('review_asked_at')
    with op.batch_alter_table('promoter_loops', schema=None) as batch_op:
        batch_op.drop_index('uq_promoter_loops_project_default', sqlite_where=sa.text('survey_id IS NULL'), postgresql_where=sa.text('survey_id IS NULL'))
    op.drop_table('promoter_loops')
