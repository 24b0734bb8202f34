"""deeplab-bench: rerun the DeepLab papers' ablations on your data and hardware."""

__version__ = "0.1.0"
