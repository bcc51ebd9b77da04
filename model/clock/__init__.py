"""Clock learning: the second training method, beside L=1 (see ``model.clock.training``)."""

from model.clock.method import ClockMethod

METHOD = ClockMethod()
