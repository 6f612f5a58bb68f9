"""Exact resumption of interrupted training runs."""

from __future__ import annotations

import json
import os

import keras
import numpy as np

from keras_swin.utils import atomic_path

_STATE_FILE = "random_state.npz"


class RandomStateBackup(keras.callbacks.Callback):
    """Backs up the model's random-generator states with each epoch.

    `keras.callbacks.BackupAndRestore` restores the weights, the optimizer
    and the epoch, but not the `SeedGenerator` states of dropout and
    stochastic depth, so a resumed run would draw other drop masks than an
    uninterrupted one. This callback saves those states (the model
    variables that are not weights) into the same backup folder at the end
    of every epoch and restores them when training starts again. The file
    goes away with `BackupAndRestore`'s folder when a run finishes.

    Args:
        backup_dir: the `BackupAndRestore` folder.

    Example:
        >>> callbacks = backup_callbacks("/tmp/run/backup")
        >>> [type(c).__name__ for c in callbacks]
        ['RandomStateBackup', 'BackupAndRestore']
    """

    def __init__(self, backup_dir: str | os.PathLike):
        super().__init__()
        self.backup_dir = os.fspath(backup_dir)
        self.path = os.path.join(self.backup_dir, _STATE_FILE)

    def _states(self):
        weights = {id(v) for v in self.model.weights}
        return [v for v in self.model.variables if id(v) not in weights]

    def on_train_begin(self, logs=None):
        if not os.path.exists(self.path):
            return
        states = self._states()
        with np.load(self.path) as saved:
            if len(saved.files) != len(states):
                raise ValueError(
                    f"{self.path} holds {len(saved.files)} random states but "
                    f"the model has {len(states)}: is this the backup of "
                    "another model?"
                )
            for i, variable in enumerate(states):
                variable.assign(saved[f"state_{i}"])

    def on_epoch_end(self, epoch, logs=None):
        os.makedirs(self.backup_dir, exist_ok=True)
        arrays = {
            f"state_{i}": keras.ops.convert_to_numpy(v)
            for i, v in enumerate(self._states())
        }
        with atomic_path(self.path) as tmp:
            np.savez(tmp, **arrays)


def resumed_epoch(backup_dir: str | os.PathLike) -> int:
    """The epoch a run with this backup folder starts from (0: none).

    Reads the metadata `keras.callbacks.BackupAndRestore` writes at the
    end of each epoch, so that the input pipeline can start where the
    interrupted run stopped.

    Args:
        backup_dir: the `BackupAndRestore` folder.

    Returns:
        The number of finished epochs in the backup.

    Example:
        >>> resumed_epoch("/tmp/no-such-backup")
        0
    """
    path = os.path.join(os.fspath(backup_dir), "training_metadata.json")
    if not os.path.exists(path):
        return 0
    with open(path) as f:
        try:
            return int(json.load(f)["epoch"])
        except (ValueError, KeyError, TypeError) as error:
            raise ValueError(
                f"{path}: unreadable backup metadata ({error!r}); remove "
                "the backup folder to start afresh."
            ) from error


def backup_callbacks(backup_dir: str | os.PathLike) -> list:
    """`BackupAndRestore` plus `RandomStateBackup` on one folder.

    With deterministic input, a run interrupted and started again with
    these callbacks ends with the same weights as an uninterrupted run.

    Args:
        backup_dir: folder for the backup (removed after a finished run).

    Returns:
        [RandomStateBackup, BackupAndRestore], to pass to `fit`.

    Example:
        >>> model.fit(data, epochs=10, callbacks=backup_callbacks("bk"))
    """
    backup_dir = os.fspath(backup_dir)
    return [
        RandomStateBackup(backup_dir),
        keras.callbacks.BackupAndRestore(backup_dir),
    ]
