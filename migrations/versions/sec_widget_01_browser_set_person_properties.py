"""browser-set person properties and email apart from server-set ones; the widget's browser property allow-list

Revision ID: sec_widget_01
Revises: sec_low_01
Create Date: 2026-12-03 22:10:00.000000

"""
from alembic import op
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

# revision identifiers, used by Alembic.
revision = 'sec_widget_01'
down_revision = 'sec_low_01'
branch_labels = None
depends_on = None

JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql')


def upgrade():
    with op.batch_alter_table('people', schema=None) as batch_op:
        batch_op.add_column(sa.Column('browser_properties', JSON, server_default='{}', nullable=False))
        batch_op.add_column(sa.Column('email_from_browser', sa.Boolean(), server_default=sa.false(), nullable=False))
    with op.batch_alter_table('widget_settings', schema=None) as batch_op:
        batch_op.add_column(sa.Column('browser_property_keys', JSON, nullable=True))


def downgrade():
    with op.batch_alter_table('widget_settings', schema=None) as batch_op:
        batch_op.drop_column('browser_property_keys')
    with op.batch_alter_table('people', schema=None) as batch_op:
        batch_op.drop_column('email_from_browser')
        batch_op.drop_column('browser_properties')
