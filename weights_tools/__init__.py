"""Checkpoint readers and converters for keras-swin."""
