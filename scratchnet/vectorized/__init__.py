"""The vectorized backend: the same classes as scratchnet.loops, on NumPy arrays of shape (batch, features)."""

from scratchnet.vectorized.activations import Identity, LeakyReLU, ReLU, Sigmoid, Softmax, Tanh
from scratchnet.vectorized.layers import Dense, Dropout
from scratchnet.vectorized.losses import BinaryCrossEntropy, CrossEntropy, MeanSquaredError
from scratchnet.vectorized.network import Network
from scratchnet.vectorized.optimizers import SGD, Adagrad, Adam, AdamW, RMSprop

__all__ = [
    "Adagrad",
    "Adam",
    "AdamW",
    "BinaryCrossEntropy",
    "CrossEntropy",
    "Dense",
    "Dropout",
    "Identity",
    "LeakyReLU",
    "MeanSquaredError",
    "Network",
    "RMSprop",
    "ReLU",
    "SGD",
    "Sigmoid",
    "Softmax",
    "Tanh",
]
