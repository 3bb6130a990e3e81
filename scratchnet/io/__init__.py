"""Reading and writing model files: standard-library .npy/.npz codecs."""
