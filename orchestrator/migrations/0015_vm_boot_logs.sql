-- What a VM's guest wrote on its serial console before it last stopped by itself (a boot that
-- failed, typically), as its node reported it. One per VM: a newer stop replaces it.
CREATE TABLE vm_boot_logs (
    vm_id       uuid PRIMARY KEY REFERENCES vms (id) ON DELETE CASCADE,
    stop_id     uuid NOT NULL,  -- the node's id of the stop, so a repeated report adds nothing
    captured_at timestamptz NOT NULL,
    ran_for_s   bigint CHECK (ran_for_s >= 0),
    log         text NOT NULL
);
