"""`python -m keras_swin`: the same as the `keras-swin` command."""

import sys

from keras_swin.cli import main

sys.exit(main())
