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
    "attention_model": "keras_swin.analysis.attention",
    "vit_token_layout": "keras_swin.analysis.attention",
    "swin_window_layouts": "keras_swin.analysis.attention",
    "mean_attention_distance": "keras_swin.analysis.distance",
    "mean_attention_distance_per_block": "keras_swin.analysis.distance",
    "swin_mean_attention_distance": "keras_swin.analysis.distance",
    "swin_mean_attention_distance_per_block": "keras_swin.analysis.distance",
    "attention_rollout": "keras_swin.analysis.rollout",
    "rollout_map": "keras_swin.analysis.rollout",
    "swin_query_attention": "keras_swin.analysis.swin_maps",
    "stitch_windows": "keras_swin.analysis.swin_maps",
    "window_token_positions": "keras_swin.analysis.swin_maps",
    "query_token": "keras_swin.analysis.swin_maps",
    "position_embedding_similarity": "keras_swin.analysis.embeddings",
    "patch_embedding_components": "keras_swin.analysis.embeddings",
    "analyze_model": "keras_swin.analysis.report",
}

__all__ = sorted(_EXPORTS) + ["figures"]

__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS, ("figures",))
