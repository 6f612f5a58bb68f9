"""The head warning: said once, and never when no head was asked for.

Before: `keras-swin convert --classes 3` printed the replaced-head message
twice (a UserWarning and the same text as a note), and `classes=0`, which
asks for no head, still warned that the head was not loaded.
"""

import warnings

from helpers import golden

from keras_swin import checkpoint_notes, load_checkpoint
from keras_swin.cli import main
from weights_tools.convert import HeadWarning

SWIN_PTH = golden("swin_official", "tiny_w4_64", "checkpoint.pth")
MESSAGE = "5-class head (head.weight, head.bias) is not loaded"


def _load(**kwargs):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model = load_checkpoint(SWIN_PTH, **kwargs)
    return model, [w for w in caught if MESSAGE in str(w.message)]


def test_new_head_warns_once_and_notes_it():
    model, caught = _load(classes=3)
    assert len(caught) == 1 and caught[0].category is HeadWarning
    assert sum(MESSAGE in n for n in checkpoint_notes(model)) == 1


def test_no_head_asked_for_no_warning():
    model, caught = _load(classes=0)
    assert caught == []
    assert any("pooled features" in n for n in checkpoint_notes(model))


def test_cli_convert_says_it_once(tmp_path, capsys):
    out = tmp_path / "swin.weights.h5"
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        code = main(["convert", str(SWIN_PTH), str(out), "--classes", "3"])
    assert code == 0
    printed = capsys.readouterr()
    said = (
        printed.out.count(MESSAGE)
        + printed.err.count(MESSAGE)
        + sum(MESSAGE in str(w.message) for w in caught)
    )
    assert said == 1
    assert f"note: {SWIN_PTH}: the checkpoint's {MESSAGE}" in printed.out
