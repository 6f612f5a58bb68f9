"""Window partition, relative index and shift masks vs the official code."""

import json
import re

import keras
import numpy as np
import pytest
from helpers import golden, to_numpy
from keras import ops

from keras_swin.layers import SwinBlock, SwinStage, windows
from weights_tools.readers import read_pth

CASES = ["tiny_w7_224", "tiny_w4_64"]


@pytest.mark.parametrize("shape,m", [((2, 8, 12, 3), 4), ((1, 14, 7, 5), 7)])
def test_partition_reverse_round_trip(rng, shape, m):
    x = rng.standard_normal(shape).astype("float32")
    parts = windows.window_partition(ops.convert_to_tensor(x), m)
    b, h, w, c = shape
    assert tuple(parts.shape) == (b * (h // m) * (w // m), m * m, c)
    # Window 1 (second in row-major window order) of image 0.
    row, col = divmod(1, w // m)
    np.testing.assert_array_equal(
        to_numpy(parts)[1],
        x[0, row * m : (row + 1) * m, col * m : (col + 1) * m].reshape(
            m * m, c
        ),
    )
    back = windows.window_reverse(parts, m, h, w)
    np.testing.assert_array_equal(to_numpy(back), x)


def test_relative_index_matches_format_example():
    expected = [[4, 3, 1, 0], [5, 4, 2, 1], [7, 6, 4, 3], [8, 7, 5, 4]]
    np.testing.assert_array_equal(windows.relative_position_index(2), expected)
    assert not windows.relative_position_index(2).flags.writeable


def test_small_window_reads_centre_of_larger_table():
    # Offsets of a 2x2 window inside the 7x7 window's 13x13 table.
    index = windows.relative_position_index(2, 7)
    centre = 6 * 13 + 6
    assert index[0, 0] == centre
    assert index[0, 1] == centre - 1  # dw = -1
    assert index[0, 2] == centre - 13  # dh = -1
    np.testing.assert_array_equal(
        windows.relative_position_index(7, 7),
        windows.relative_position_index(7),
    )


def _attention_calls(block, x, monkeypatch):
    """What `block`'s attention receives on `x`: window shapes and mask.

    Returns:
        One (windows shape, mask as numpy or None) per attention call.
    """
    calls = []
    attend = block.attn.call

    def record(inputs, attention_mask=None, training=None):
        mask = None if attention_mask is None else to_numpy(attention_mask)
        calls.append((tuple(inputs.shape), mask))
        return attend(inputs, attention_mask=attention_mask, training=training)

    monkeypatch.setattr(block.attn, "call", record)
    block(x)
    monkeypatch.undo()
    return calls


@pytest.mark.parametrize("case", CASES)
def test_blocks_use_the_official_windows_and_buffers(case, monkeypatch):
    state = read_pth(golden("swin_official", case, "checkpoint.pth"))
    config = json.loads(
        golden("swin_official", case, "config.json").read_text()
    )
    window_size = config["constructor_kwargs"]["window_size"]
    checked_masks = 0
    for stage in config["stages"]:
        height, width = stage["resolution"]
        dim, heads = stage["dim"], stage["num_heads"]
        # The table window SwinTransformer gives a stage of this size.
        table = min(window_size, height, width)
        layer = SwinStage(dim, stage["depth"], heads, window_size=table)
        x = np.zeros((1, height, width, dim), "float32")
        layer(x)
        for block in stage["blocks"]:
            prefix = f"layers.{stage['stage']}.blocks.{block['block']}."
            blk = layer.blocks[block["block"]]
            [(shape, mask)] = _attention_calls(blk, x, monkeypatch)
            m = block["window_size"]
            assert shape == (block["num_windows"], m * m, dim)
            # A table holding its row numbers turns the bias into the index.
            rows = np.arange((2 * table - 1) ** 2, dtype="float32")
            blk.attn.relative_position_bias_table.assign(
                np.repeat(rows[:, None], heads, axis=1)
            )
            bias = to_numpy(blk.attn.relative_position_bias(m))
            for head in range(heads):
                np.testing.assert_array_equal(
                    bias[head], state[prefix + "attn.relative_position_index"]
                )
            if block["has_attn_mask"]:
                np.testing.assert_array_equal(mask, state[prefix + "attn_mask"])
                checked_masks += 1
            else:
                assert mask is None
                assert prefix + "attn_mask" not in state
    assert checked_masks == sum(
        bool(re.search(r"attn_mask$", k)) for k in state
    )
    assert checked_masks > 0


def test_mask_regions_on_format_example():
    mask = windows.shift_window_mask(4, 4, 2, 1)
    m = windows.MASK_VALUE
    np.testing.assert_array_equal(mask[0], np.zeros((4, 4)))
    np.testing.assert_array_equal(mask[1][0], [0, m, 0, m])
    np.testing.assert_array_equal(mask[2][0], [0, 0, m, m])
    np.testing.assert_array_equal(mask[3], np.where(np.eye(4), 0, m))


@pytest.mark.parametrize(
    "size,window,shift,windows_shape,mask",
    [
        # Hugging Face padded_250 case: last stage 8x8, window 7: padded
        # to 14x14 first, then shifted and masked for the padded map.
        ((8, 8), 7, 3, (4, 49, 8), windows.shift_window_mask(14, 14, 7, 3)),
        # A map equal to the window: one window, no shift, no mask.
        ((7, 7), 7, 3, (1, 49, 8), None),
        # A map narrower than the window: window 3, no shift, 3x12 padded.
        ((3, 10), 4, 2, (4, 9, 8), None),
    ],
)
def test_block_pads_before_shift(
    size, window, shift, windows_shape, mask, monkeypatch
):
    block = SwinBlock(8, 2, window_size=window, shift_size=shift)
    x = np.zeros((1,) + size + (8,), "float32")
    block(x)
    [(shape, used)] = _attention_calls(block, x, monkeypatch)
    assert shape == windows_shape
    if mask is None:
        assert used is None
    else:
        np.testing.assert_array_equal(used, mask)


@pytest.mark.parametrize(
    "height,width,m,shift", [(8, 8, 4, 2), (14, 21, 7, 3), (6, 6, 3, 0)]
)
def test_dynamic_twins_match_numpy(height, width, m, shift):
    t = ops.convert_to_tensor
    index = windows.dynamic_relative_position_index(t(m, "int32"), 7)
    np.testing.assert_array_equal(
        to_numpy(index), windows.relative_position_index(m, 7)
    )
    mask = windows.dynamic_shift_window_mask(
        t(height, "int32"), t(width, "int32"), t(m, "int32"), t(shift, "int32")
    )
    expected = (
        windows.shift_window_mask(height, width, m, shift)
        if shift
        else np.zeros(((height // m) * (width // m), m * m, m * m))
    )
    np.testing.assert_array_equal(to_numpy(mask), expected)


def test_pad_bottom_right_static_and_noop():
    x = keras.ops.ones((1, 5, 6, 2))
    assert windows.pad_bottom_right(x, 0, 0) is x
    y = to_numpy(windows.pad_bottom_right(x, 2, 1))
    assert y.shape == (1, 7, 7, 2)
    assert y[:, 5:].sum() == 0 and y[:, :, 6:].sum() == 0
    assert y[:, :5, :6].min() == 1


def test_bad_arguments_are_named():
    with pytest.raises(ValueError, match="table_window"):
        windows.relative_position_index(8, 7)
    with pytest.raises(ValueError, match="multiple of the window"):
        windows.shift_window_mask(10, 8, 4, 2)


def test_constants_are_cached_on_the_device_they_meet():
    x = ops.zeros((1,))
    first = windows.constant(windows.relative_position_index, 3, like=x)
    assert windows.constant(windows.relative_position_index, 3) is first
    assert windows.constant(windows.relative_position_index, 3, like=x) is first
    np.testing.assert_array_equal(
        to_numpy(first), windows.relative_position_index(3)
    )
    if keras.config.backend() == "torch":
        import torch

        # A tensor on another device gets its own copy there.
        meta = torch.empty(0, device="meta")
        other = windows.constant(windows.relative_position_index, 3, like=meta)
        assert other.device == meta.device != first.device
        assert first.device == x.device
