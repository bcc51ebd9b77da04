"""The plan's method: batch 1, sequence length 1, the state carried and detached after every
step (see ``model.l1.training``). Importing it never imports torch: the compiled engine is the
default, and the torch reference engine is loaded only when asked for."""

from model.l1.method import L1Method

METHOD = L1Method()
