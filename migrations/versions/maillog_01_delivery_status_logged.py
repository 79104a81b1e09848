"""webhook delivery status `logged`: an email alert kept under instance/outbox/ because SMTP_URL is unset

Revision ID: maillog_01
Revises: cons_status_01
Create Date: 2026-12-04 13:20:00.000000

"""
from alembic import op

# revision identifiers, used by Alembic.
revision = 'maillog_01'
down_revision = 'cons_status_01'
branch_labels = None
depends_on = None

# Written out rather than imported: a migration keeps the list it was written with.
OLD = ('pending', 'retrying', 'delivered', 'failed')
NEW = ('pending', 'retrying', 'delivered', 'logged', 'failed')
NAME = 'ck_webhook_deliveries_delivery_status_known'


def _check(statuses):
    return 'status IN (' + ', '.join(f"'{s}'" for s in statuses) + ')'


def upgrade():
    with op.batch_alter_table('webhook_deliveries', schema=None) as batch_op:
        batch_op.drop_constraint(op.f(NAME), type_='check')
        batch_op.create_check_constraint(op.f(NAME), _check(NEW))


def downgrade():
    # Before this revision a logged alert was recorded as delivered.
    op.execute("UPDATE webhook_deliveries SET status = 'delivered' WHERE status = 'logged'")
    with op.batch_alter_table('webhook_deliveries', schema=None) as batch_op:
        batch_op.drop_constraint(op.f(NAME), type_='check')
        batch_op.create_check_constraint(op.f(NAME), _check(OLD))
