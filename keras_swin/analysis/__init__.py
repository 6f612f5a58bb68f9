"""What the models learned: attention outputs and the papers' analyses.

* `attention_model(model)`: a model of the same weights whose outputs are
  every block's attention probabilities (ViT and Swin), with the layouts
  that place them in the image (`vit_token_layout`,
  `swin_window_layouts`);
* numpy analyses of those arrays: mean attention distance, attention
  rollout, Swin attention of a query point in image coordinates;
* analyses of the weights: position-embedding similarity and the
  principal components of the patch-embedding filters;
* `keras_swin.analysis.figures`: the figures of `keras-swin analyze`.

Names are imported on first use.
"""

from __future__ import annotations

from keras_swin._import_hooks import lazy_exports

#: Public name -> module that defines it (helpers add their names here).
_EXPORTS = {
    "TokenLayout": "keras_swin.analysis.layout",
    "WindowLayout": "keras_swin.analysis.layout",
}

__all__ = sorted(_EXPORTS)

__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS, ())
