"""key rotation with an overlap: a project's previous secret key hash and identity secret, with expiries

Revision ID: users_mgmt_01
Revises: maillog_01
Create Date: 2026-12-04 14:00:00.000000

"""
from alembic import op
import sqlalchemy as sa

import survey_service.models

# revision identifiers, used by Alembic.
revision = 'users_mgmt_01'
down_revision = 'maillog_01'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('projects', schema=None) as batch_op:
        batch_op.add_column(sa.Column('previous_secret_key_hash', sa.String(length=64), nullable=True))
        batch_op.add_column(
            sa.Column('previous_secret_key_expires_at', survey_service.models.UTCDateTime(timezone=True), nullable=True)
        )
        batch_op.add_column(sa.Column('previous_identity_secret_encrypted', sa.Text(), nullable=True))
        batch_op.add_column(
            sa.Column(
                'previous_identity_secret_expires_at', survey_service.models.UTCDateTime(timezone=True), nullable=True
            )
        )
        batch_op.create_index(batch_op.f('ix_projects_previous_secret_key_hash'), ['previous_secret_key_hash'], unique=False)


def downgrade():
    with op.batch_alter_table('projects', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_projects_previous_secret_key_hash'))
        batch_op.drop_column('previous_identity_secret_expires_at')
        batch_op.drop_column('previous_identity_secret_encrypted')
        batch_op.drop_column('previous_secret_key_expires_at')
        batch_op.drop_column('previous_secret_key_hash')
