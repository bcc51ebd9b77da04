"""What a person reads: the text report and its JSON twin, the HTML page and its figures, the
dashboard notes, the artifacts attached for optuna-dashboard, and evaluation on fresh noise.
It reads studies; it never runs or prunes a trial (a contract in ``.importlinter``)."""
