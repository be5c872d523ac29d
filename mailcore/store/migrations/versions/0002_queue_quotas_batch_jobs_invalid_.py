"""queue, quotas, batch jobs, invalid addresses, domain keys

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-27 05:48:08.551051
"""
from alembic import op
import sqlalchemy as sa


revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:

    op.create_table('domain_keys',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('domain', sa.String(length=253), nullable=False),
    sa.Column('ownership_token', sa.String(length=64), nullable=False),
    sa.Column('dkim_selector', sa.String(length=63), nullable=False),
    sa.Column('dkim_private_enc', sa.Text(), nullable=False),
    sa.Column('dkim_public', sa.Text(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_domain_keys')),
    sa.UniqueConstraint('domain', name=op.f('uq_domain_keys_domain'))
    )
    op.create_table('batch_jobs',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('account_id', sa.Integer(), nullable=False),
    sa.Column('receivers_list', sa.String(length=64), nullable=False),
    sa.Column('template', sa.String(length=64), nullable=False),
    sa.Column('sender', sa.String(length=254), nullable=False),
    sa.Column('tag', sa.String(length=128), nullable=True),
    sa.Column('address_type', sa.String(length=8), nullable=False),
    sa.Column('tracking', sa.Boolean(), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('request_count', sa.Integer(), nullable=False),
    sa.Column('env_id', sa.String(length=32), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['account_id'], ['accounts.id'], name=op.f('fk_batch_jobs_account_id_accounts'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_batch_jobs'))
    )
    with op.batch_alter_table('batch_jobs', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_batch_jobs_account_id'), ['account_id'], unique=False)

    op.create_table('invalid_addresses',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('account_id', sa.Integer(), nullable=False),
    sa.Column('address', sa.String(length=254), nullable=False),
    sa.Column('reason', sa.Text(), nullable=True),
    sa.Column('added_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['account_id'], ['accounts.id'], name=op.f('fk_invalid_addresses_account_id_accounts'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_invalid_addresses')),
    sa.UniqueConstraint('account_id', 'address', name='uq_invalid_addresses_account_address')
    )
    with op.batch_alter_table('invalid_addresses', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_invalid_addresses_account_id'), ['account_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_invalid_addresses_added_at'), ['added_at'], unique=False)

    op.create_table('quota_counters',
    sa.Column('account_id', sa.Integer(), nullable=False),
    sa.Column('period', sa.String(length=16), nullable=False),
    sa.Column('used', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['account_id'], ['accounts.id'], name=op.f('fk_quota_counters_account_id_accounts'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('account_id', 'period', name=op.f('pk_quota_counters'))
    )
    op.create_table('queue_messages',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('account_id', sa.Integer(), nullable=False),
    sa.Column('sender', sa.String(length=254), nullable=False),
    sa.Column('envelope_from', sa.String(length=254), nullable=False),
    sa.Column('region', sa.String(length=32), nullable=False),
    sa.Column('source', sa.String(length=8), nullable=False),
    sa.Column('tag', sa.String(length=128), nullable=True),
    sa.Column('tracking', sa.Boolean(), nullable=False),
    sa.Column('message_id', sa.String(length=255), nullable=False),
    sa.Column('subject', sa.Text(), nullable=True),
    sa.Column('content', sa.LargeBinary(), nullable=True),
    sa.Column('template', sa.JSON(), nullable=True),
    sa.Column('batch_job_id', sa.Integer(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['account_id'], ['accounts.id'], name=op.f('fk_queue_messages_account_id_accounts'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['batch_job_id'], ['batch_jobs.id'], name=op.f('fk_queue_messages_batch_job_id_batch_jobs')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_queue_messages'))
    )
    with op.batch_alter_table('queue_messages', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_queue_messages_account_id'), ['account_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_queue_messages_batch_job_id'), ['batch_job_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_queue_messages_envelope_from'), ['envelope_from'], unique=False)

    op.create_table('queue_recipients',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('message_id', sa.Integer(), nullable=False),
    sa.Column('rcpt', sa.String(length=254), nullable=False),
    sa.Column('rcpt_domain', sa.String(length=253), nullable=False),
    sa.Column('variables', sa.JSON(), nullable=True),
    sa.Column('state', sa.String(length=12), nullable=False),
    sa.Column('attempts', sa.Integer(), server_default='0', nullable=False),
    sa.Column('next_attempt_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('lease_owner', sa.String(length=64), nullable=True),
    sa.Column('lease_until', sa.DateTime(timezone=True), nullable=True),
    sa.Column('last_code', sa.Integer(), nullable=True),
    sa.Column('last_text', sa.Text(), nullable=True),
    sa.Column('status', sa.Integer(), nullable=True),
    sa.Column('failed_type', sa.String(length=32), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('done_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['message_id'], ['queue_messages.id'], name=op.f('fk_queue_recipients_message_id_queue_messages'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_queue_recipients'))
    )
    with op.batch_alter_table('queue_recipients', schema=None) as batch_op:
        batch_op.create_index('ix_queue_recipients_due', ['state', 'next_attempt_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_queue_recipients_message_id'), ['message_id'], unique=False)




def downgrade() -> None:

    with op.batch_alter_table('queue_recipients', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_queue_recipients_message_id'))
        batch_op.drop_index('ix_queue_recipients_due')

    op.drop_table('queue_recipients')
    with op.batch_alter_table('queue_messages', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_queue_messages_envelope_from'))
        batch_op.drop_index(batch_op.f('ix_queue_messages_batch_job_id'))
        batch_op.drop_index(batch_op.f('ix_queue_messages_account_id'))

    op.drop_table('queue_messages')
    op.drop_table('quota_counters')
    with op.batch_alter_table('invalid_addresses', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_invalid_addresses_added_at'))
        batch_op.drop_index(batch_op.f('ix_invalid_addresses_account_id'))

    op.drop_table('invalid_addresses')
    with op.batch_alter_table('batch_jobs', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_batch_jobs_account_id'))

    op.drop_table('batch_jobs')
    op.drop_table('domain_keys')

