-- Community templates (POST /api/templates): a name belongs to the author who first published
-- it; each publish adds the next version, and versions never change afterwards (a trigger
-- refuses it), except that their author may deprecate one once.
CREATE TABLE community_template_names (
    name           text PRIMARY KEY,
    author_wallet  text NOT NULL,
    latest_version integer NOT NULL DEFAULT 0,
    created_at     timestamptz NOT NULL
);

CREATE TABLE community_templates (
    name          text NOT NULL REFERENCES community_template_names (name),
    version       integer NOT NULL CHECK (version >= 1),
    author_wallet text NOT NULL,
    manifest      jsonb NOT NULL,  -- description, image, minimum, ports, parameters
    user_data     text NOT NULL,   -- the #cloud-config document, placeholders unexpanded
    created_at    timestamptz NOT NULL,
    deprecated_at timestamptz,
    PRIMARY KEY (name, version)
);

CREATE FUNCTION community_templates_immutable() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        RAISE EXCEPTION 'community template % version % is immutable', OLD.name, OLD.version;
    END IF;
    IF NEW.name <> OLD.name OR NEW.version <> OLD.version
       OR NEW.author_wallet <> OLD.author_wallet OR NEW.manifest <> OLD.manifest
       OR NEW.user_data <> OLD.user_data OR NEW.created_at <> OLD.created_at
       OR (OLD.deprecated_at IS NOT NULL AND NEW.deprecated_at IS DISTINCT FROM OLD.deprecated_at)
    THEN
        RAISE EXCEPTION 'community template % version % is immutable', OLD.name, OLD.version;
    END IF;
    RETURN NEW;
END
$$;

CREATE TRIGGER community_templates_immutable BEFORE UPDATE OR DELETE ON community_templates
    FOR EACH ROW EXECUTE FUNCTION community_templates_immutable();

-- The price an operator set with PUT /api/nodes/{id}/profile; it outlives re-registrations,
-- which otherwise carry the agent's configured (or the default) price. NULL: none set.
ALTER TABLE node_profiles ADD COLUMN price_per_point_micro_usdc bigint;
