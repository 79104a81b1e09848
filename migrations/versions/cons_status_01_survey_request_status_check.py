"""survey request status: a CHECK constraint naming the known states (models.RequestStatus)

Revision ID: cons_status_01
Revises: sec_widget_01
Create Date: 2026-12-04 12:45:00.000000

"""
from alembic import op

# revision identifiers, used by Alembic.
revision = 'cons_status_01'
down_revision = 'sec_widget_01'
branch_labels = None
depends_on = None

# Written out rather than imported: a migration keeps the list it was written with.
STATUSES = (
    'pending', 'scheduled', 'sending', 'sent', 'responded', 'dismissed', 'cancelled',
    'superseded', 'skipped', 'suppressed', 'expired', 'failed', 'bounced',
)


def upgrade():
    # No code ever set another state, but a row that holds one would stop the constraint: it ends
    # as `failed` with the old value kept in status_reason, so the send job never picks it up.
    known = ', '.join(f"'{s}'" for s in STATUSES)
    op.execute(
        "UPDATE survey_requests SET status_reason = substr('was ' || status, 1, 32), status = 'failed'"
        f" WHERE status NOT IN ({known})"
    )
    with op.batch_alter_table('survey_requests', schema=None) as batch_op:
        batch_op.create_check_constraint(op.f('ck_survey_requests_request_status_known'), f"status IN ({known})")


def downgrade():
    with op.batch_alter_table('survey_requests', schema=None) as batch_op:
        batch_op.drop_constraint(op.f('ck_survey_requests_request_status_known'), type_='check')
