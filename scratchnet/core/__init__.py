"""core"""

# The sequence layer types (spec/math.md, sections 16-20) are entries of the layer registry kept in a
# module of their own, scratchnet/core/sequence_types.py; importing any part of core registers them.
from scratchnet.core import sequence_types as _sequence_types  # noqa: F401
