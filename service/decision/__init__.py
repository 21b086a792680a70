"""Decision (pure): ``decide(rule, alert, findings, guards, *, now) -> Plan``. No clock, no ids, no I/O."""
