"""The shared model package: data, LSTM, training and honest evaluation.

It never imports Optuna: the sweep drives it from the outside.
"""
