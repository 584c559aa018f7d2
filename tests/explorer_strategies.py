"""Hypothesis strategies shared by the explorer tests (a helper module, not a test module).

Imported as a plain module (pytest puts tests/ on sys.path): `from tests.x import ...` would
find whichever top-level `tests` package an installed distribution ships first.
"""
from hypothesis import settings
from hypothesis import strategies as st

from d2lcore.explore import toolkit

settings.register_profile("explorers", max_examples=40, deadline=None)


def control_values(controls):
    """A hypothesis strategy over every control's full range, bounds respected."""
    def one(c):
        if isinstance(c, toolkit.Slider):
            if c.integer:
                return st.integers(int(c.min), int(c.max))
            return st.floats(c.min, c.max, allow_nan=False)
        if isinstance(c, toolkit.Choice):
            return st.sampled_from(c.options)
        return st.booleans()

    def respect_bounds(values):
        for c in controls:
            if getattr(c, "at_most", None):
                other, offset = c.at_most
                values[c.name] = min(values[c.name], values[other] + offset)
        return values

    return st.fixed_dictionaries({c.name: one(c) for c in controls}).map(respect_bounds)
