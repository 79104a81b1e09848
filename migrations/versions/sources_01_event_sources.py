"""event sources: provider webhooks (Segment, Stripe, Zendesk, …) per project, and their delivery log

Revision ID: sources_01
Revises: themes_01
Create Date: 2026-12-04 15:30:00.000000

"""
from alembic import op
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

import survey_service.models

# revision identifiers, used by Alembic.
revision = 'sources_01'
down_revision = 'themes_01'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        'event_sources',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('project_id', sa.Integer(), nullable=False),
        sa.Column('kind', sa.String(length=16), nullable=False),
        sa.Column('name', sa.String(length=200), nullable=True),
        sa.Column('token', sa.String(length=64), nullable=False),
        sa.Column('secret_encrypted', sa.Text(), nullable=False),
        sa.Column('previous_secret_encrypted', sa.Text(), nullable=True),
        sa.Column('previous_secret_expires_at', survey_service.models.UTCDateTime(timezone=True), nullable=True),
        sa.Column('mapping', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
        sa.Column('enabled', sa.Boolean(), server_default=sa.text('true'), nullable=False),
        sa.Column('created_at', survey_service.models.UTCDateTime(timezone=True), nullable=False),
        sa.Column('last_received_at', survey_service.models.UTCDateTime(timezone=True), nullable=True),
        sa.CheckConstraint(
            "kind IN ('segment', 'stripe', 'zendesk', 'intercom', 'freshdesk', 'hubspot', 'chargebee')",
            name=op.f('ck_event_sources_event_source_kind_known'),
        ),
        sa.ForeignKeyConstraint(['project_id'], ['projects.id'], name=op.f('fk_event_sources_project_id_projects'), ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_event_sources')),
        sa.UniqueConstraint('token', name=op.f('uq_event_sources_token')),
    )
    with op.batch_alter_table('event_sources', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_event_sources_project_id'), ['project_id'], unique=False)

    op.create_table(
        'source_deliveries',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('source_id', sa.Integer(), nullable=False),
        sa.Column('received_at', survey_service.models.UTCDateTime(timezone=True), nullable=False),
        sa.Column('outcome', sa.String(length=10), nullable=False),
        sa.Column('reason', sa.String(length=300), nullable=True),
        sa.Column('provider_event', sa.String(length=100), nullable=True),
        sa.Column('event_id', sa.String(length=255), nullable=True),
        sa.Column('event_type', sa.String(length=64), nullable=True),
        sa.CheckConstraint(
            "outcome IN ('accepted', 'duplicate', 'ignored', 'refused')",
            name=op.f('ck_source_deliveries_source_delivery_outcome_known'),
        ),
        sa.ForeignKeyConstraint(['source_id'], ['event_sources.id'], name=op.f('fk_source_deliveries_source_id_event_sources'), ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_source_deliveries')),
    )
    with op.batch_alter_table('source_deliveries', schema=None) as batch_op:
        batch_op.create_index('ix_source_deliveries_source_id_id', ['source_id', 'id'], unique=False)


def downgrade():
    with op.batch_alter_table('source_deliveries', schema=None) as batch_op:
        batch_op.drop_index('ix_source_deliveries_source_id_id')
    op.drop_table('source_deliveries')
    with op.batch_alter_table('event_sources', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_event_sources_project_id'))
    op.drop_table('event_sources')
