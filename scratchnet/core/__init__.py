"""core"""

# The sequence layer types (spec/math.md, sections 16-20) and the container types (section 23) are
# entries of the layer registry kept in modules of their own, scratchnet/core/sequence_types.py and
# scratchnet/core/containers.py; importing any part of core registers them.
from scratchnet.core import containers as _containers  # noqa: F401
from scratchnet.core import sequence_types as _sequence_types  # noqa: F401
