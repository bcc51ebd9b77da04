"""A third training method for the plug-in test (``tests/test_toy_method.py``): numpy only,
trivially cheap, in a package of its own that nothing in the project imports."""

from toy_method.method import ToyMethod

METHOD = ToyMethod()
