"""Data: the embedded synthetic scenes (synthetic), VOC 2012 (voc), Cityscapes (cityscapes), the
data specs (spec) and the LightningDataModule that serves one (datamodule).

Nothing is imported here, so that reading a spec or the class names (bench.data.spec) does not
import Lightning: `bench table` rebuilds tables without the training stack.
"""
