"""initial account state

Revision ID: 0001
Revises: 
Create Date: 2026-11-27 05:36:03.176345
"""
from alembic import op
import sqlalchemy as sa


revision = '0001'
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:

    op.create_table('accounts',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('name', sa.String(length=64), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('timezone', sa.String(length=64), nullable=False),
    sa.Column('quota_daily', sa.Integer(), nullable=False),
    sa.Column('quota_monthly', sa.Integer(), nullable=False),
    sa.Column('quota_free_daily', sa.Integer(), nullable=False),
    sa.Column('allowlist_enabled', sa.Boolean(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_accounts')),
    sa.UniqueConstraint('name', name=op.f('uq_accounts_name'))
    )
    op.create_table('apply_locks',
    sa.Column('name', sa.String(length=128), nullable=False),
    sa.Column('holder', sa.String(length=200), nullable=True),
    sa.Column('acquired_at', sa.DateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('name', name=op.f('pk_apply_locks'))
    )
    op.create_table('allowlist_entries',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('account_id', sa.Integer(), nullable=False),
    sa.Column('entry', sa.String(length=100), nullable=False),
    sa.ForeignKeyConstraint(['account_id'], ['accounts.id'], name=op.f('fk_allowlist_entries_account_id_accounts'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_allowlist_entries')),
    sa.UniqueConstraint('account_id', 'entry', name='uq_allowlist_entries_account_entry')
    )
    with op.batch_alter_table('allowlist_entries', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_allowlist_entries_account_id'), ['account_id'], unique=False)

    op.create_table('api_keys',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('account_id', sa.Integer(), nullable=False),
    sa.Column('access_key_id', sa.String(length=64), nullable=False),
    sa.Column('secret_enc', sa.Text(), nullable=False),
    sa.Column('description', sa.Text(), nullable=False),
    sa.Column('enabled', sa.Boolean(), nullable=False),
    sa.ForeignKeyConstraint(['account_id'], ['accounts.id'], name=op.f('fk_api_keys_account_id_accounts'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_api_keys')),
    sa.UniqueConstraint('access_key_id', name=op.f('uq_api_keys_access_key_id'))
    )
    with op.batch_alter_table('api_keys', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_api_keys_account_id'), ['account_id'], unique=False)

    op.create_table('applies',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('account_id', sa.Integer(), nullable=False),
    sa.Column('actor', sa.String(length=128), nullable=False),
    sa.Column('at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('summary', sa.JSON(), nullable=False),
    sa.ForeignKeyConstraint(['account_id'], ['accounts.id'], name=op.f('fk_applies_account_id_accounts'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_applies'))
    )
    with op.batch_alter_table('applies', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_applies_account_id'), ['account_id'], unique=False)

    op.create_table('dns_backends',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('account_id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=64), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('settings', sa.JSON(), nullable=False),
    sa.ForeignKeyConstraint(['account_id'], ['accounts.id'], name=op.f('fk_dns_backends_account_id_accounts'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_dns_backends')),
    sa.UniqueConstraint('account_id', 'name', name='uq_dns_backends_account_name')
    )
    with op.batch_alter_table('dns_backends', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_dns_backends_account_id'), ['account_id'], unique=False)

    op.create_table('domains',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('account_id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=253), nullable=False),
    sa.Column('region', sa.String(length=32), nullable=False),
    sa.Column('zone', sa.String(length=253), nullable=True),
    sa.Column('dns_backend', sa.String(length=64), nullable=False),
    sa.Column('tracking', sa.Boolean(), nullable=False),
    sa.Column('ttl_seconds', sa.Integer(), nullable=True),
    sa.Column('dmarc', sa.Text(), nullable=True),
    sa.Column('purpose', sa.String(length=16), nullable=False),
    sa.Column('status', sa.String(length=16), server_default='unverified', nullable=False),
    sa.Column('status_detail', sa.Text(), nullable=True),
    sa.Column('verified_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['account_id'], ['accounts.id'], name=op.f('fk_domains_account_id_accounts'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_domains')),
    sa.UniqueConstraint('name', name=op.f('uq_domains_name'))
    )
    with op.batch_alter_table('domains', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_domains_account_id'), ['account_id'], unique=False)

    op.create_table('notification_rules',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('account_id', sa.Integer(), nullable=False),
    sa.Column('region', sa.String(length=32), nullable=False),
    sa.Column('name', sa.String(length=64), nullable=False),
    sa.Column('events', sa.JSON(), nullable=False),
    sa.Column('senders', sa.JSON(), nullable=True),
    sa.ForeignKeyConstraint(['account_id'], ['accounts.id'], name=op.f('fk_notification_rules_account_id_accounts'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_notification_rules')),
    sa.UniqueConstraint('account_id', 'region', 'name', name='uq_notification_rules_account_region_name')
    )
    with op.batch_alter_table('notification_rules', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_notification_rules_account_id'), ['account_id'], unique=False)

    op.create_table('notifications',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('account_id', sa.Integer(), nullable=False),
    sa.Column('scope', sa.String(length=254), nullable=False),
    sa.Column('region', sa.String(length=32), nullable=False),
    sa.ForeignKeyConstraint(['account_id'], ['accounts.id'], name=op.f('fk_notifications_account_id_accounts'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_notifications')),
    sa.UniqueConstraint('account_id', 'scope', name='uq_notifications_account_scope')
    )
    with op.batch_alter_table('notifications', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_notifications_account_id'), ['account_id'], unique=False)

    op.create_table('recipient_lists',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('account_id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=64), nullable=False),
    sa.Column('alias_address', sa.String(length=254), nullable=False),
    sa.Column('description', sa.Text(), nullable=False),
    sa.Column('row_count', sa.Integer(), nullable=False),
    sa.Column('digest', sa.String(length=64), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['account_id'], ['accounts.id'], name=op.f('fk_recipient_lists_account_id_accounts'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_recipient_lists')),
    sa.UniqueConstraint('account_id', 'alias_address', name='uq_recipient_lists_account_alias'),
    sa.UniqueConstraint('account_id', 'name', name='uq_recipient_lists_account_name')
    )
    with op.batch_alter_table('recipient_lists', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_recipient_lists_account_id'), ['account_id'], unique=False)

    op.create_table('regions',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('account_id', sa.Integer(), nullable=False),
    sa.Column('region', sa.String(length=32), nullable=False),
    sa.Column('mx_host', sa.String(length=253), nullable=True),
    sa.Column('spf_include', sa.String(length=253), nullable=True),
    sa.Column('tracking_host', sa.String(length=253), nullable=True),
    sa.ForeignKeyConstraint(['account_id'], ['accounts.id'], name=op.f('fk_regions_account_id_accounts'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_regions')),
    sa.UniqueConstraint('account_id', 'region', name='uq_regions_account_region')
    )
    with op.batch_alter_table('regions', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_regions_account_id'), ['account_id'], unique=False)

    op.create_table('sender_deletions',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('account_id', sa.Integer(), nullable=False),
    sa.Column('address', sa.String(length=254), nullable=False),
    sa.Column('deleted_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['account_id'], ['accounts.id'], name=op.f('fk_sender_deletions_account_id_accounts'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_sender_deletions'))
    )
    with op.batch_alter_table('sender_deletions', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_sender_deletions_account_id'), ['account_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_sender_deletions_deleted_at'), ['deleted_at'], unique=False)

    op.create_table('tags',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('account_id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=128), nullable=False),
    sa.Column('description', sa.Text(), nullable=False),
    sa.ForeignKeyConstraint(['account_id'], ['accounts.id'], name=op.f('fk_tags_account_id_accounts'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_tags')),
    sa.UniqueConstraint('account_id', 'name', name='uq_tags_account_name')
    )
    with op.batch_alter_table('tags', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_tags_account_id'), ['account_id'], unique=False)

    op.create_table('templates',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('account_id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=64), nullable=False),
    sa.Column('subject', sa.String(length=200), nullable=False),
    sa.Column('nick_name', sa.String(length=64), nullable=False),
    sa.Column('body', sa.Text(), nullable=False),
    sa.Column('content_digest', sa.String(length=64), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('approved_digest', sa.String(length=64), nullable=True),
    sa.Column('submitted_by', sa.String(length=128), nullable=True),
    sa.Column('submitted_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('reviewed_by', sa.String(length=128), nullable=True),
    sa.Column('reviewed_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('review_comment', sa.Text(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['account_id'], ['accounts.id'], name=op.f('fk_templates_account_id_accounts'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_templates')),
    sa.UniqueConstraint('account_id', 'name', name='uq_templates_account_name')
    )
    with op.batch_alter_table('templates', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_templates_account_id'), ['account_id'], unique=False)

    op.create_table('notification_endpoints',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('rule_id', sa.Integer(), nullable=False),
    sa.Column('position', sa.Integer(), nullable=False),
    sa.Column('kind', sa.String(length=8), nullable=False),
    sa.Column('target', sa.Text(), nullable=False),
    sa.Column('signing_secret_enc', sa.Text(), nullable=True),
    sa.ForeignKeyConstraint(['rule_id'], ['notification_rules.id'], name=op.f('fk_notification_endpoints_rule_id_notification_rules'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_notification_endpoints'))
    )
    with op.batch_alter_table('notification_endpoints', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_notification_endpoints_rule_id'), ['rule_id'], unique=False)

    op.create_table('recipients',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('list_id', sa.Integer(), nullable=False),
    sa.Column('position', sa.Integer(), nullable=False),
    sa.Column('email', sa.String(length=254), nullable=False),
    sa.Column('user_name', sa.String(length=200), nullable=True),
    sa.Column('nick_name', sa.String(length=100), nullable=True),
    sa.Column('gender', sa.String(length=100), nullable=True),
    sa.Column('birthday', sa.String(length=100), nullable=True),
    sa.Column('mobile', sa.String(length=100), nullable=True),
    sa.ForeignKeyConstraint(['list_id'], ['recipient_lists.id'], name=op.f('fk_recipients_list_id_recipient_lists'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_recipients'))
    )
    with op.batch_alter_table('recipients', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_recipients_list_id'), ['list_id'], unique=False)

    op.create_table('senders',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('account_id', sa.Integer(), nullable=False),
    sa.Column('domain_id', sa.Integer(), nullable=False),
    sa.Column('address', sa.String(length=254), nullable=False),
    sa.Column('type', sa.String(length=8), nullable=False),
    sa.Column('reply_to', sa.String(length=254), nullable=True),
    sa.Column('smtp_password_hash', sa.String(length=200), nullable=True),
    sa.Column('smtp_password_fingerprint', sa.String(length=64), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['account_id'], ['accounts.id'], name=op.f('fk_senders_account_id_accounts'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['domain_id'], ['domains.id'], name=op.f('fk_senders_domain_id_domains')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_senders')),
    sa.UniqueConstraint('address', name=op.f('uq_senders_address'))
    )
    with op.batch_alter_table('senders', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_senders_account_id'), ['account_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_senders_domain_id'), ['domain_id'], unique=False)

    op.create_table('template_reviews',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('template_id', sa.Integer(), nullable=False),
    sa.Column('action', sa.String(length=16), nullable=False),
    sa.Column('actor', sa.String(length=128), nullable=False),
    sa.Column('at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('content_digest', sa.String(length=64), nullable=False),
    sa.Column('comment', sa.Text(), nullable=True),
    sa.ForeignKeyConstraint(['template_id'], ['templates.id'], name=op.f('fk_template_reviews_template_id_templates'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_template_reviews'))
    )
    with op.batch_alter_table('template_reviews', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_template_reviews_template_id'), ['template_id'], unique=False)




def downgrade() -> None:

    with op.batch_alter_table('template_reviews', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_template_reviews_template_id'))

    op.drop_table('template_reviews')
    with op.batch_alter_table('senders', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_senders_domain_id'))
        batch_op.drop_index(batch_op.f('ix_senders_account_id'))

    op.drop_table('senders')
    with op.batch_alter_table('recipients', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_recipients_list_id'))

    op.drop_table('recipients')
    with op.batch_alter_table('notification_endpoints', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_notification_endpoints_rule_id'))

    op.drop_table('notification_endpoints')
    with op.batch_alter_table('templates', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_templates_account_id'))

    op.drop_table('templates')
    with op.batch_alter_table('tags', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_tags_account_id'))

    op.drop_table('tags')
    with op.batch_alter_table('sender_deletions', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_sender_deletions_deleted_at'))
        batch_op.drop_index(batch_op.f('ix_sender_deletions_account_id'))

    op.drop_table('sender_deletions')
    with op.batch_alter_table('regions', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_regions_account_id'))

    op.drop_table('regions')
    with op.batch_alter_table('recipient_lists', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_recipient_lists_account_id'))

    op.drop_table('recipient_lists')
    with op.batch_alter_table('notifications', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_notifications_account_id'))

    op.drop_table('notifications')
    with op.batch_alter_table('notification_rules', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_notification_rules_account_id'))

    op.drop_table('notification_rules')
    with op.batch_alter_table('domains', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_domains_account_id'))

    op.drop_table('domains')
    with op.batch_alter_table('dns_backends', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_dns_backends_account_id'))

    op.drop_table('dns_backends')
    with op.batch_alter_table('applies', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_applies_account_id'))

    op.drop_table('applies')
    with op.batch_alter_table('api_keys', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_api_keys_account_id'))

    op.drop_table('api_keys')
    with op.batch_alter_table('allowlist_entries', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_allowlist_entries_account_id'))

    op.drop_table('allowlist_entries')
    op.drop_table('apply_locks')
    op.drop_table('accounts')

