"""Convert an official Swin checkpoint and check it against the official code.

    $ KERAS_BACKEND=torch python examples/convert_official_checkpoint.py
    official_swin: embed_dim=24 depths=(2, 2, 2, 2) heads=(1, 2, 3, 6)
      window=7 image=224 classes=10
    max |keras - official| logits: 6.0e-07 (PyTorch reference, 2 images)
    saved swin_tiny_golden.keras (1,290,106 parameters)

The checkpoint is one of the repository's test fixtures: a Swin with seeded
random weights run through Microsoft's official code. Pass another path
(e.g. swin_tiny_patch4_window7_224.pth from the official model zoo) as the
first argument to convert it instead; the comparison then is skipped.
"""

import sys
from pathlib import Path

import numpy as np

from keras_swin import load_checkpoint
from weights_tools import checkpoint_config

GOLDEN = Path(__file__).resolve().parents[1] / "tests" / "golden"
DEFAULT = GOLDEN / "swin_official" / "tiny_w7_224" / "checkpoint.pth"


def main(path: Path = DEFAULT, output: str = "swin_tiny_golden.keras"):
    config = checkpoint_config(path)
    print(
        f"{config['format']}: embed_dim={config['embed_dim']} "
        f"depths={config['depths']} heads={config['num_heads']}\n"
        f"  window={config['window_size']} image="
        f"{config['input_shape'][0]} classes={config['classes']}"
    )
    model = load_checkpoint(path)
    if path == DEFAULT:
        images = np.load(path.parent / "inputs_nhwc.npy")
        official = np.load(path.parent / "logits.npy")
        logits = model.predict(images, verbose=0)
        print(
            f"max |keras - official| logits: "
            f"{np.abs(logits - official).max():.1e} (PyTorch reference, "
            f"{len(images)} images)"
        )
    model.save(output)
    print(f"saved {output} ({model.count_params():,} parameters)")


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else DEFAULT)
