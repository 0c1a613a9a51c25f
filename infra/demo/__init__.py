"""``switchboard demo``: the whole stack on sample calls, end to end, on one machine."""
