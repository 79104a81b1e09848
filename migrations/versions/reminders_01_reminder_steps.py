"""reminders: reminder plans, reminder steps of a first ask, the widget's last sight of a person

Revision ID: reminders_01
Revises: bulk_sends_01
Create Date: 2026-12-04 18:10:00.000000

"""
import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

from survey_service.models import UTCDateTime

# revision identifiers, used by Alembic.
revision = 'reminders_01'
down_revision = 'bulk_sends_01'
branch_labels = None
depends_on = None

JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql')


def upgrade():
    with op.batch_alter_table('people', schema=None) as batch_op:
        batch_op.add_column(sa.Column('widget_seen_at', UTCDateTime(), nullable=True))
    with op.batch_alter_table('surveys', schema=None) as batch_op:
        batch_op.add_column(sa.Column('reminders', JSON, nullable=True))
    with op.batch_alter_table('trigger_rules', schema=None) as batch_op:
        batch_op.add_column(sa.Column('reminders', JSON, nullable=True))
    with op.batch_alter_table('enrollments', schema=None) as batch_op:
        batch_op.add_column(sa.Column('reminders', JSON, nullable=True))
    with op.batch_alter_table('responses', schema=None) as batch_op:
        batch_op.add_column(sa.Column('answered_after_step', sa.SmallInteger(), nullable=True))
    with op.batch_alter_table('survey_requests', schema=None) as batch_op:
        batch_op.add_column(sa.Column('reminder_of_id', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('step', sa.SmallInteger(), server_default='0', nullable=False))
        batch_op.add_column(sa.Column('reminder_plan', JSON, nullable=True))
        batch_op.add_column(sa.Column('next_reminder_at', UTCDateTime(), nullable=True))
        batch_op.create_foreign_key(
            'fk_survey_requests_reminder_of_id_survey_requests',
            'survey_requests',
            ['reminder_of_id'],
            ['id'],
            ondelete='CASCADE',
        )
        batch_op.create_unique_constraint(
            'uq_survey_requests_reminder_step', ['reminder_of_id', 'step', 'channel']
        )
        batch_op.create_check_constraint(
            op.f('ck_survey_requests_request_step_range'), 'step BETWEEN 0 AND 3'
        )
        batch_op.create_check_constraint(
            op.f('ck_survey_requests_request_step_matches_reminder'), '(reminder_of_id IS NULL) = (step = 0)'
        )
        batch_op.create_index(
            'ix_survey_requests_next_reminder',
            ['next_reminder_at'],
            unique=False,
            postgresql_where=sa.text('next_reminder_at IS NOT NULL'),
            sqlite_where=sa.text('next_reminder_at IS NOT NULL'),
        )


def downgrade():
    with op.batch_alter_table('survey_requests', schema=None) as batch_op:
        batch_op.drop_index('ix_survey_requests_next_reminder')
        batch_op.drop_constraint(op.f('ck_survey_requests_request_step_matches_reminder'), type_='check')
        batch_op.drop_constraint(op.f('ck_survey_requests_request_step_range'), type_='check')
        batch_op.drop_constraint('uq_survey_requests_reminder_step', type_='unique')
        batch_op.drop_constraint('fk_survey_requests_reminder_of_id_survey_requests', type_='foreignkey')
        batch_op.drop_column('next_reminder_at')
        batch_op.drop_column('reminder_plan')
        batch_op.drop_column('step')
        batch_op.drop_column('reminder_of_id')
    with op.batch_alter_table('responses', schema=None) as batch_op:
        batch_op.drop_column('answered_after_step')
    with op.batch_alter_table('enrollments', schema=None) as batch_op:
        batch_op.drop_column('reminders')
    with op.batch_alter_table('trigger_rules', schema=None) as batch_op:
        batch_op.drop_column('reminders')
    with op.batch_alter_table('surveys', schema=None) as batch_op:
        batch_op.drop_column('reminders')
    with op.batch_alter_table('people', schema=None) as batch_op:
        batch_op.drop_column('widget_seen_at')
