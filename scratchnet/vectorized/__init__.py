"""The vectorized backend: the same classes as scratchnet.loops, on NumPy arrays of shape (batch, features)."""

from scratchnet.vectorized.activations import Identity, LeakyReLU, ReLU, Sigmoid, Softmax, Tanh
from scratchnet.vectorized.layers import Dense, Dropout
from scratchnet.vectorized.losses import BinaryCrossEntropy, CrossEntropy, MeanSquaredError
from scratchnet.vectorized.network import Network
from scratchnet.vectorized.optimizers import SGD

__all__ = [
    "BinaryCrossEntropy",
    "CrossEntropy",
    "Dense",
    "Dropout",
    "Identity",
    "LeakyReLU",
    "MeanSquaredError",
    "Network",
    "ReLU",
    "SGD",
    "Sigmoid",
    "Softmax",
    "Tanh",
]
