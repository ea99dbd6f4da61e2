-- Identity sources (issue 8). Kept in lock-step with the other backend's
-- 0008_identity.sql.

-- LDAP group sync (Portus's teams.ldap_group_checked, as an opt-out flag): a team whose
-- owner turned it off is never synced; ldap_checked_at is the last sync that saw the
-- team's group.
ALTER TABLE teams ADD COLUMN ldap_group_sync BOOLEAN NOT NULL DEFAULT true;
ALTER TABLE teams ADD COLUMN ldap_checked_at BIGINT;

-- Memberships the group sync made: only these are removed when a member leaves the
-- group (ldap.group_sync.remove_members), never one an owner added by hand.
ALTER TABLE team_users ADD COLUMN ldap_synced BOOLEAN NOT NULL DEFAULT false;

-- Accounts at an OpenID Connect / OAuth provider: (provider, subject) names one user.
CREATE TABLE external_identities (
    id INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT,
    user_id BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    provider TEXT NOT NULL,
    subject TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    last_used_at BIGINT NOT NULL,
    CONSTRAINT external_identities_provider_subject_key UNIQUE (provider, subject)
);
CREATE INDEX external_identities_user_id_idx ON external_identities (user_id);
