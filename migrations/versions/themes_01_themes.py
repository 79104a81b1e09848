"""themes: per-project themes and rules version, comment analyses, response themes, per-day theme counts

Revision ID: themes_01
Revises: promoter_01
Create Date: 2026-12-04 15:05:19.986343

"""
from alembic import op
import sqlalchemy as sa

import survey_service.models
from sqlalchemy.dialects import postgresql

# revision identifiers, used by Alembic.
revision = 'themes_01'
down_revision = 'promoter_01'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('theme_cursor',
    sa.Column('name', sa.String(length=16), nullable=False),
    sa.Column('updated_at', survey_service.models.UTCDateTime(timezone=True), nullable=False),
    sa.Column('response_id', sa.BigInteger(), nullable=False),
    sa.PrimaryKeyConstraint('name', name=op.f('pk_theme_cursor'))
    )
    op.create_table('theme_rules',
    sa.Column('project_id', sa.Integer(), nullable=False),
    sa.Column('version', sa.Integer(), server_default='1', nullable=False),
    sa.Column('applied_version', sa.Integer(), server_default='0', nullable=False),
    sa.Column('updated_at', survey_service.models.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['project_id'], ['projects.id'], name=op.f('fk_theme_rules_project_id_projects'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('project_id', name=op.f('pk_theme_rules'))
    )
    op.create_table('themes',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('project_id', sa.Integer(), nullable=False),
    sa.Column('key', sa.String(length=40), nullable=False),
    sa.Column('label', sa.String(length=80), nullable=False),
    sa.Column('keywords', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.Column('enabled', sa.Boolean(), server_default=sa.true(), nullable=False),
    sa.Column('builtin', sa.Boolean(), server_default=sa.false(), nullable=False),
    sa.Column('created_at', survey_service.models.UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated_at', survey_service.models.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['project_id'], ['projects.id'], name=op.f('fk_themes_project_id_projects'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_themes')),
    sa.UniqueConstraint('project_id', 'key', name='uq_themes_project_key')
    )
    op.create_table('theme_rollups',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('project_id', sa.Integer(), nullable=False),
    sa.Column('day', sa.Date(), nullable=False),
    sa.Column('survey_id', sa.Integer(), nullable=False),
    sa.Column('channel', sa.String(length=8), nullable=False),
    sa.Column('theme_id', sa.Integer(), nullable=True),
    sa.Column('promoters', sa.Integer(), nullable=False),
    sa.Column('passives', sa.Integer(), nullable=False),
    sa.Column('detractors', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['project_id'], ['projects.id'], name=op.f('fk_theme_rollups_project_id_projects'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['survey_id'], ['surveys.id'], name=op.f('fk_theme_rollups_survey_id_surveys'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['theme_id'], ['themes.id'], name=op.f('fk_theme_rollups_theme_id_themes'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_theme_rollups'))
    )
    with op.batch_alter_table('theme_rollups', schema=None) as batch_op:
        batch_op.create_index('ix_theme_rollups_project_day', ['project_id', 'day'], unique=False)

    op.create_table('response_analyses',
    sa.Column('response_id', sa.Integer(), nullable=False),
    sa.Column('project_id', sa.Integer(), nullable=False),
    sa.Column('language', sa.String(length=8), nullable=False),
    sa.Column('language_source', sa.String(length=8), nullable=False),
    sa.Column('supported', sa.Boolean(), nullable=False),
    sa.Column('sentiment', sa.String(length=8), nullable=False),
    sa.Column('sentiment_score', sa.Float(), nullable=False),
    sa.Column('comment_hash', sa.String(length=16), nullable=False),
    sa.Column('rules_version', sa.Integer(), nullable=False),
    sa.Column('analysed_at', survey_service.models.UTCDateTime(timezone=True), nullable=False),
    sa.CheckConstraint("language_source IN ('detected', 'locale', 'fallback')", name=op.f('ck_response_analyses_analysis_language_source_known')),
    sa.CheckConstraint("sentiment IN ('positive', 'neutral', 'negative')", name=op.f('ck_response_analyses_analysis_sentiment_known')),
    sa.ForeignKeyConstraint(['project_id'], ['projects.id'], name=op.f('fk_response_analyses_project_id_projects'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['response_id'], ['responses.id'], name=op.f('fk_response_analyses_response_id_responses'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('response_id', name=op.f('pk_response_analyses'))
    )
    with op.batch_alter_table('response_analyses', schema=None) as batch_op:
        batch_op.create_index('ix_response_analyses_project', ['project_id', 'sentiment'], unique=False)

    op.create_table('response_themes',
    sa.Column('response_id', sa.Integer(), nullable=False),
    sa.Column('theme_id', sa.Integer(), nullable=False),
    sa.Column('project_id', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['project_id'], ['projects.id'], name=op.f('fk_response_themes_project_id_projects'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['response_id'], ['responses.id'], name=op.f('fk_response_themes_response_id_responses'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['theme_id'], ['themes.id'], name=op.f('fk_response_themes_theme_id_themes'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('response_id', 'theme_id', name=op.f('pk_response_themes'))
    )
    with op.batch_alter_table('response_themes', schema=None) as batch_op:
        batch_op.create_index('ix_response_themes_theme', ['theme_id', 'response_id'], unique=False)

    with op.batch_alter_table('responses', schema=None) as batch_op:
        batch_op.create_index('ix_responses_updated', ['updated_at', 'id'], unique=False)



def downgrade():
    with op.batch_alter_table('responses', schema=None) as batch_op:
        batch_op.drop_index('ix_responses_updated')

    with op.batch_alter_table('response_themes', schema=None) as batch_op:
        batch_op.drop_index('ix_response_themes_theme')

    op.drop_table('response_themes')
    with op.batch_alter_table('response_analyses', schema=None) as batch_op:
        batch_op.drop_index('ix_response_analyses_project')

    op.drop_table('response_analyses')
    with op.batch_alter_table('theme_rollups', schema=None) as batch_op:
        batch_op.drop_index('ix_theme_rollups_project_day')

    op.drop_table('theme_rollups')
    op.drop_table('themes')
    op.drop_table('theme_rules')
    op.drop_table('theme_cursor')
