"""The plan's rules as pure functions: the Decision Matrix, the clock's stall rule, the success
tiers. Nothing here imports Optuna, the model or any other part of the sweep (a contract in
``.importlinter``), so each rule is tested on plain numbers and can be handed to ``model/`` as a
function."""
