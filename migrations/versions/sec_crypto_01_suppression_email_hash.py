"""suppressions: a keyed hash of the address, so erasure can blank the address and keep it suppressed

Revision ID: sec_crypto_01
Revises: a33efbf33c21
Create Date: 2026-12-03 22:10:00.000000

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = 'sec_crypto_01'
down_revision = 'a33efbf33c21'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('email_suppressions', schema=None) as batch_op:
        batch_op.add_column(sa.Column('email_hash', sa.String(length=64), nullable=True))
        batch_op.alter_column('email', existing_type=sa.String(length=320), nullable=True)
        batch_op.create_check_constraint(
            'suppression_names_an_address', 'email IS NOT NULL OR email_hash IS NOT NULL'
        )
        batch_op.create_index('ix_email_suppressions_project_email_hash', ['project_id', 'email_hash'], unique=False)


def downgrade():
    # Rows of erased people hold no address: they cannot go back to a NOT NULL email column.
    op.execute("DELETE FROM email_suppressions WHERE email IS NULL")
    with op.batch_alter_table('email_suppressions', schema=None) as batch_op:
        batch_op.drop_index('ix_email_suppressions_project_email_hash')
        batch_op.drop_constraint('suppression_names_an_address', type_='check')
        batch_op.alter_column('email', existing_type=sa.String(length=320), nullable=False)
        batch_op.drop_column('email_hash')
