"""Explorers: move a control and watch a loss turn into a probability model.

Each module holds one explorer (pure ``compute``, ``draw``, ``readouts``) and a ``show()``;
``toolkit`` holds everything they share. In a notebook::

    from d2lcore import explore
    explore.softmax_categorical.show()
"""
from d2lcore.explore import softmax_categorical, toolkit

__all__ = ["softmax_categorical", "toolkit"]
