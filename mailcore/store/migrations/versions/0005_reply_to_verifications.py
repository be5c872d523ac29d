"""reply-to verification (R13)

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-27 11:05:00
"""
from alembic import op
import sqlalchemy as sa


revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('reply_to_verifications',
    sa.Column('sender_id', sa.Integer(), nullable=False),
    sa.Column('verified_address', sa.String(length=254), nullable=True),
    sa.Column('verified_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('ticket_hash', sa.String(length=64), nullable=True),
    sa.Column('ticket_address', sa.String(length=254), nullable=True),
    sa.Column('sent_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['sender_id'], ['senders.id'], name=op.f('fk_reply_to_verifications_sender_id_senders'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('sender_id', name=op.f('pk_reply_to_verifications')),
    sa.UniqueConstraint('ticket_hash', name=op.f('uq_reply_to_verifications_ticket_hash'))
    )


def downgrade() -> None:
    op.drop_table('reply_to_verifications')
