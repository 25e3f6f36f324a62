-- Developers set a password when they accept an invitation.
ALTER TABLE developers ADD COLUMN password_hash TEXT NOT NULL DEFAULT '';
CREATE INDEX project_developers_invitation ON project_developers(invitation_hash);
