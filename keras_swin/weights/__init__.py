"""The weights floor: releases, download, cache, loading into a model.

Between the graphs (`keras_swin.models`) and the applications that
build and load in one call (`keras_swin.applications`):

- `families`: one `Family` per model family (builder, variant table,
  what its releases fix, its source formats); no `family == ...` tests;
- `releases`: the registered official releases (data only);
- `pretrained`: release names and aliases, the download and the cache of
  converted arrays;
- `loading`: a converted checkpoint fitted and assigned to a built model,
  the record of its source and notes (`checkpoint_notes`,
  `weights_source`), and the builders' `weights=` argument.

Reading and converting a checkpoint file is `weights_tools`, below all
floors and free of Keras. Names are imported on first use, so that
`keras_swin.weights.releases` is read without importing Keras.

Example:
    >>> from keras_swin.weights import available_weights, checkpoint_notes
    >>> "swin_tiny_patch4_window7_224.ms_in1k" in available_weights()
    True
"""

from __future__ import annotations

from keras_swin._import_hooks import lazy_exports

_EXPORTS = {
    "FAMILIES": "keras_swin.weights.families",
    "Family": "keras_swin.weights.families",
    "get_family": "keras_swin.weights.families",
    "PRETRAINED": "keras_swin.weights.releases",
    "WeightsSpec": "keras_swin.weights.releases",
    "available_weights": "keras_swin.weights.pretrained",
    "get_weights_spec": "keras_swin.weights.pretrained",
    "cached_checkpoint": "keras_swin.weights.pretrained",
    "checkpoint_notes": "keras_swin.weights.loading",
    "weights_source": "keras_swin.weights.loading",
    "load_into": "keras_swin.weights.loading",
}

__all__ = sorted(_EXPORTS)


__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
