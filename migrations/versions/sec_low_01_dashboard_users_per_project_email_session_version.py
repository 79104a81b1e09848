"""dashboard users: email unique per project, session version

Revision ID: sec_low_01
Revises: sec_crypto_01
Create Date: 2026-12-03 22:00:00.000000

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = 'sec_low_01'
down_revision = 'sec_crypto_01'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('dashboard_users', schema=None) as batch_op:
        batch_op.add_column(sa.Column('session_version', sa.Integer(), server_default='1', nullable=False))
        batch_op.drop_constraint(batch_op.f('uq_dashboard_users_email'), type_='unique')
        batch_op.create_unique_constraint('uq_dashboard_users_project_email', ['project_id', 'email'])
        batch_op.create_index(batch_op.f('ix_dashboard_users_email'), ['email'], unique=False)


def downgrade():
    # Fails if one email now has users in two projects: that state has no global-unique form.
    with op.batch_alter_table('dashboard_users', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_dashboard_users_email'))
        batch_op.drop_constraint('uq_dashboard_users_project_email', type_='unique')
        batch_op.create_unique_constraint(batch_op.f('uq_dashboard_users_email'), ['email'])
        batch_op.drop_column('session_version')
