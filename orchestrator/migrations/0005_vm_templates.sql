-- The template a VM was created from, with its parameters minus the secret ones (the rendered
-- user-data, which may hold secrets, only travels in the create command and is scrubbed from it
-- once the node has answered).
ALTER TABLE vms
    ADD COLUMN template_id     text,
    ADD COLUMN template_params jsonb NOT NULL DEFAULT '{}';
