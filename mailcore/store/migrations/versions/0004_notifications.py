"""notifications

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-27 06:02:46.730381
"""
from alembic import op
import sqlalchemy as sa


revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('notify_queues',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('account_id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=64), nullable=False),
    sa.Column('polling_wait_seconds', sa.Integer(), nullable=False),
    sa.Column('visibility_timeout_seconds', sa.Integer(), nullable=False),
    sa.Column('max_message_bytes', sa.Integer(), nullable=False),
    sa.Column('retention_seconds', sa.Integer(), nullable=False),
    sa.Column('delay_seconds', sa.Integer(), nullable=False),
    sa.Column('base64_bodies', sa.Boolean(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['account_id'], ['accounts.id'], name=op.f('fk_notify_queues_account_id_accounts'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_notify_queues')),
    sa.UniqueConstraint('account_id', 'name', name='uq_notify_queues_account_name')
    )
    with op.batch_alter_table('notify_queues', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_notify_queues_account_id'), ['account_id'], unique=False)

    op.create_table('notify_subscriptions',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('account_id', sa.Integer(), nullable=False),
    sa.Column('topic', sa.String(length=64), nullable=False),
    sa.Column('kind', sa.String(length=8), nullable=False),
    sa.Column('target', sa.Text(), nullable=False),
    sa.Column('signing_secret_enc', sa.Text(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['account_id'], ['accounts.id'], name=op.f('fk_notify_subscriptions_account_id_accounts'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_notify_subscriptions')),
    sa.UniqueConstraint('account_id', 'topic', 'kind', 'target', name='uq_notify_subscriptions_account_topic')
    )
    with op.batch_alter_table('notify_subscriptions', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_notify_subscriptions_account_id'), ['account_id'], unique=False)

    op.create_table('notify_deliveries',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('event_id', sa.Integer(), nullable=False),
    sa.Column('parent_id', sa.Integer(), nullable=True),
    sa.Column('rule', sa.String(length=64), nullable=True),
    sa.Column('kind', sa.String(length=8), nullable=False),
    sa.Column('target', sa.Text(), nullable=False),
    sa.Column('signing_secret_enc', sa.Text(), nullable=True),
    sa.Column('state', sa.String(length=12), nullable=False),
    sa.Column('attempts', sa.Integer(), server_default='0', nullable=False),
    sa.Column('next_attempt_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('lease_owner', sa.String(length=64), nullable=True),
    sa.Column('lease_until', sa.DateTime(timezone=True), nullable=True),
    sa.Column('last_error', sa.Text(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('done_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['event_id'], ['events.id'], name=op.f('fk_notify_deliveries_event_id_events'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['parent_id'], ['notify_deliveries.id'], name=op.f('fk_notify_deliveries_parent_id_notify_deliveries'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_notify_deliveries'))
    )
    with op.batch_alter_table('notify_deliveries', schema=None) as batch_op:
        batch_op.create_index('ix_notify_deliveries_due', ['state', 'next_attempt_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_notify_deliveries_event_id'), ['event_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_notify_deliveries_parent_id'), ['parent_id'], unique=False)

    op.create_table('notify_attempts',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('delivery_id', sa.Integer(), nullable=False),
    sa.Column('attempt', sa.Integer(), nullable=False),
    sa.Column('at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('duration_ms', sa.Integer(), nullable=False),
    sa.Column('status_code', sa.Integer(), nullable=True),
    sa.Column('error', sa.Text(), nullable=True),
    sa.Column('outcome', sa.String(length=12), nullable=False),
    sa.ForeignKeyConstraint(['delivery_id'], ['notify_deliveries.id'], name=op.f('fk_notify_attempts_delivery_id_notify_deliveries'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_notify_attempts'))
    )
    with op.batch_alter_table('notify_attempts', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_notify_attempts_delivery_id'), ['delivery_id'], unique=False)

    op.create_table('notify_queue_messages',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('queue_id', sa.Integer(), nullable=False),
    sa.Column('delivery_id', sa.Integer(), nullable=True),
    sa.Column('body', sa.Text(), nullable=False),
    sa.Column('enqueued_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('visible_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('expires_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('receive_count', sa.Integer(), server_default='0', nullable=False),
    sa.Column('first_received_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('receipt', sa.String(length=64), nullable=True),
    sa.ForeignKeyConstraint(['delivery_id'], ['notify_deliveries.id'], name=op.f('fk_notify_queue_messages_delivery_id_notify_deliveries'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['queue_id'], ['notify_queues.id'], name=op.f('fk_notify_queue_messages_queue_id_notify_queues'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_notify_queue_messages')),
    sa.UniqueConstraint('receipt', name=op.f('uq_notify_queue_messages_receipt'))
    )
    with op.batch_alter_table('notify_queue_messages', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_notify_queue_messages_delivery_id'), ['delivery_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_notify_queue_messages_expires_at'), ['expires_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_notify_queue_messages_queue_id'), ['queue_id'], unique=False)
        batch_op.create_index('ix_notify_queue_messages_visible', ['queue_id', 'visible_at'], unique=False)

    with op.batch_alter_table('events', schema=None) as batch_op:
        batch_op.create_index('ix_events_unrouted', ['routed_at', 'id'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('events', schema=None) as batch_op:
        batch_op.drop_index('ix_events_unrouted')

    with op.batch_alter_table('notify_queue_messages', schema=None) as batch_op:
        batch_op.drop_index('ix_notify_queue_messages_visible')
        batch_op.drop_index(batch_op.f('ix_notify_queue_messages_queue_id'))
        batch_op.drop_index(batch_op.f('ix_notify_queue_messages_expires_at'))
        batch_op.drop_index(batch_op.f('ix_notify_queue_messages_delivery_id'))

    op.drop_table('notify_queue_messages')
    with op.batch_alter_table('notify_attempts', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_notify_attempts_delivery_id'))

    op.drop_table('notify_attempts')
    with op.batch_alter_table('notify_deliveries', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_notify_deliveries_parent_id'))
        batch_op.drop_index(batch_op.f('ix_notify_deliveries_event_id'))
        batch_op.drop_index('ix_notify_deliveries_due')

    op.drop_table('notify_deliveries')
    with op.batch_alter_table('notify_subscriptions', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_notify_subscriptions_account_id'))

    op.drop_table('notify_subscriptions')
    with op.batch_alter_table('notify_queues', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_notify_queues_account_id'))

    op.drop_table('notify_queues')
