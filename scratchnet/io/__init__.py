"""Reading and writing model files (spec/model-format.md) and the standard-library .npy/.npz codecs."""

from scratchnet.io.model import LoadedModel, load, load_model, save

__all__ = ["LoadedModel", "load", "load_model", "save"]
