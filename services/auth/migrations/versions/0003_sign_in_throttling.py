"""Sign-in throttling that cannot be turned against the owner: attempts name the account they were on
(`login_attempt.user_id`), and `sign_in_guard` keeps an administrator's unlock and the last notice sent
to the owner (docs/auth.md, "Sign-in throttling").

Revision ID: 0003
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("login_attempt", sa.Column("user_id", sa.BigInteger(), nullable=True))
    # Earlier attempts name their account by what was typed: the username or the e-mail address.
    op.execute(
        'UPDATE login_attempt SET user_id = u.id FROM "user" u '
        "WHERE login_attempt.account IN (lower(u.username), lower(u.email))"
    )
    op.create_index("ix_login_attempt_user_time", "login_attempt", ["user_id", "attempted_at"], unique=False)
    op.create_table(
        "sign_in_guard",
        sa.Column("user_id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("unlocked_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("unlocked_by", sa.BigInteger(), nullable=True),
        sa.Column("alerted_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["user_id"], ["user.id"], name=op.f("fk_sign_in_guard_user_id_user"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("user_id", name=op.f("pk_sign_in_guard")),
    )


def downgrade() -> None:
    op.drop_table("sign_in_guard")
    op.drop_index("ix_login_attempt_user_time", table_name="login_attempt")
    op.drop_column("login_attempt", "user_id")
