"""Storage and faults: opening a study's database safely, who owns a RUNNING trial, trials cut
off by a fault queued again, deferred signals, worker processes never outliving the sweep, and
every use of Optuna's private API (``optuna_private``). Nothing here reads reports or runs a
trial (a contract in ``.importlinter``); of the core it knows only the record keys."""
