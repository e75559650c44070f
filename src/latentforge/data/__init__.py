"""Datasets: built-in offline sets, user folders and array files, preprocessed once and cached."""
from latentforge.data.dataset import BUILTINS, ImageDataset, load_dataset

__all__ = ["BUILTINS", "ImageDataset", "load_dataset"]
