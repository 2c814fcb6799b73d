-- The slot of each service's latest stored periodic check. A new lease holder compares it with the slot the
-- previous holder marked in Redis before its check: a slot marked but never stored was lost with a killed
-- holder, and is checked again at once instead of leaving a gap (services/probes/agent/slots.py).
ALTER TABLE probes.service_latest ADD COLUMN slot bigint;
