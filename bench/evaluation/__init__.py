"""Evaluation: metrics (mIoU from a confusion matrix) and the speed protocol."""
