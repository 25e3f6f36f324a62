-- The fax number a project onboarded (issue 32; one per project, so two
-- onboards at once cannot both keep one): the number in E.164, the
-- provider that holds it ("local", "phaxio") and when. Credentials are
-- project secrets, never here.
CREATE TABLE fax_numbers (
  project_id TEXT NOT NULL,
  number TEXT NOT NULL,
  provider TEXT NOT NULL,
  created_at INTEGER NOT NULL,
  PRIMARY KEY (project_id)
);
