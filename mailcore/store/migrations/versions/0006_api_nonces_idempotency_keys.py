"""API nonces in the store (replay protection across listeners and restarts) and idempotency keys
(ClientToken / SMTP Message-ID retries get the first EnvId)

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-02 10:00:00
"""
from alembic import op
import sqlalchemy as sa


revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('api_nonces',
    sa.Column('access_key_id', sa.String(length=64), nullable=False),
    sa.Column('nonce', sa.String(length=64), nullable=False),
    sa.Column('expires_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('access_key_id', 'nonce', name=op.f('pk_api_nonces'))
    )
    with op.batch_alter_table('api_nonces', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_api_nonces_expires_at'), ['expires_at'], unique=False)

    op.create_table('idempotency_keys',
    sa.Column('account_id', sa.Integer(), nullable=False),
    sa.Column('key', sa.String(length=64), nullable=False),
    sa.Column('fingerprint', sa.String(length=64), nullable=True),
    sa.Column('env_id', sa.String(length=32), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('expires_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['account_id'], ['accounts.id'], name=op.f('fk_idempotency_keys_account_id_accounts'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('account_id', 'key', name=op.f('pk_idempotency_keys'))
    )
    with op.batch_alter_table('idempotency_keys', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_idempotency_keys_expires_at'), ['expires_at'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('idempotency_keys', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_idempotency_keys_expires_at'))
    op.drop_table('idempotency_keys')
    with op.batch_alter_table('api_nonces', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_api_nonces_expires_at'))
    op.drop_table('api_nonces')
