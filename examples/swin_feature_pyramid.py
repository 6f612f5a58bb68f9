"""Multi-scale Swin features on images of any size.

    $ python examples/swin_feature_pyramid.py
    input (1, 250, 190, 3)
      layers_0: (1, 63, 48, 96)
      layers_1: (1, 32, 24, 192)
      layers_2: (1, 16, 12, 384)
      layers_3: (1, 8, 6, 768)

A Swin-T backbone built for `input_shape=(None, None, 3)`: every stage is a
named layer, and `swin_feature_model` makes a `keras.Model` over their
outputs (the pyramid detection and segmentation heads use). Sizes that
are not multiples of 32 are padded inside the model, as in the official
detection code.
"""

import numpy as np

import keras_swin


def main(height: int = 250, width: int = 190):
    backbone = keras_swin.SwinTiny(
        include_top=False, input_shape=(None, None, 3)
    )
    pyramid = keras_swin.swin_feature_model(backbone)
    images = (
        np.random.default_rng(0)
        .uniform(0, 1, (1, height, width, 3))
        .astype("float32")
    )
    features = pyramid.predict(images, verbose=0)
    print("input", images.shape)
    for name, value in features.items():
        print(f"  {name}: {tuple(value.shape)}")
    return features


if __name__ == "__main__":
    main()
