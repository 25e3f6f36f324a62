-- Providers chosen per project (issue 31): a JSON object from service to
-- provider name, e.g. {"sms":"twilio"}; a service not named uses its
-- local provider. Credentials are project secrets, never here.
ALTER TABLE projects ADD COLUMN providers TEXT NOT NULL DEFAULT '{}';
