"""What a ViT's embeddings learned (the ViT paper's Figure 7, left, centre).

* `position_embedding_similarity`: the cosine similarity of each patch's
  position embedding with every other patch's (Figure 7, centre);
* `patch_embedding_components`: the principal components of the
  patch-embedding filters (Figure 7, left).

Numpy only: pass the weights as arrays (e.g. `variable.numpy()` or
`keras.ops.convert_to_numpy(variable)`).
"""

from __future__ import annotations

import numpy as np


def position_embedding_similarity(
    embedding, grid: tuple[int, int], num_prefix_tokens: int = 0
) -> np.ndarray:
    """Cosine similarity between the position embeddings of the patches.

    Args:
        embedding: (N, D) or (1, N, D) position embeddings, prefix tokens
            (class, registers) first, then the patches row-major;
            N = num_prefix_tokens + gh * gw. For a 2-D (X, Y) embedding
            pass the per-patch concatenation, (gh * gw, D).
        grid: (gh, gw) patch grid the embeddings are laid out on.
        num_prefix_tokens: P, the leading rows to leave out.

    Returns:
        (gh, gw, gh, gw) float64: entry [i, j, k, l] is the cosine
        similarity of patch (i, j)'s embedding with patch (k, l)'s, in
        [-1, 1]; a zero embedding has similarity 0 with everything.

    Raises:
        ValueError: the row count does not match the grid.

    Example:
        >>> emb = np.array([[1.0, 0.0], [0.0, 2.0], [3.0, 3.0]])
        >>> sim = position_embedding_similarity(emb, (1, 2), 1)
        >>> sim.shape, round(float(sim[0, 0, 0, 1]), 3)
        ((1, 2, 1, 2), 0.707)
    """
    embedding = np.asarray(embedding, dtype=np.float64)
    if embedding.ndim == 3 and embedding.shape[0] == 1:
        embedding = embedding[0]
    gh, gw = (int(g) for g in grid)
    expected = num_prefix_tokens + gh * gw
    if embedding.ndim != 2 or embedding.shape[0] != expected:
        raise ValueError(
            f"Position embedding of shape {embedding.shape} does not match "
            f"a {gh}x{gw} grid with {num_prefix_tokens} prefix tokens: "
            f"expected ({expected}, D) or (1, {expected}, D)."
        )
    patches = embedding[num_prefix_tokens:]
    norms = np.linalg.norm(patches, axis=-1, keepdims=True)
    unit = np.divide(
        patches, norms, out=np.zeros_like(patches), where=norms > 0
    )
    similarity = np.clip(unit @ unit.T, -1.0, 1.0)
    return similarity.reshape(gh, gw, gh, gw)


def patch_embedding_components(
    kernel, count: int = 28
) -> tuple[np.ndarray, np.ndarray]:
    """Principal components of the D patch-embedding filters.

    Each of the D filters of the patch embedding (a p x p x C convolution
    with stride p) is one p*p*C vector; the vectors are centred over the
    D filters and decomposed by SVD. Component signs are arbitrary in an
    SVD; here each component's entry of largest magnitude is positive.

    Args:
        kernel: (p, p, C, D) patch-embedding kernel (Keras `Conv2D`
            layout; for a (p, p, C, D) dense-from-patches kernel too).
        count: how many components to return (the paper shows 28).

    Returns:
        `(components, explained_variance_ratio)`: (count, p, p, C)
        float64 unit-norm components, strongest first, and (count,) the
        fraction of the filters' total variance each explains.

    Raises:
        ValueError: a kernel that is not 4-D, or more components than
            min(D, p*p*C).

    Example:
        >>> kernel = np.zeros((1, 1, 2, 4))
        >>> kernel[0, 0, 0, :2] = [2.0, -2.0]  # two filters along x
        >>> kernel[0, 0, 1, 2:] = [1.0, -1.0]  # two along y
        >>> comps, ratio = patch_embedding_components(kernel, count=2)
        >>> comps.reshape(2, 2).tolist(), ratio.tolist()
        ([[1.0, 0.0], [0.0, 1.0]], [0.8, 0.2])
    """
    kernel = np.asarray(kernel, dtype=np.float64)
    if kernel.ndim != 4:
        raise ValueError(
            f"Patch-embedding kernel of shape {kernel.shape}; expected "
            "(p, p, C, D)."
        )
    p1, p2, channels, filters = kernel.shape
    size = p1 * p2 * channels
    limit = min(filters, size)
    if not 1 <= count <= limit:
        raise ValueError(
            f"count={count} components asked of {filters} filters of "
            f"{size} values each; expected 1 <= count <= {limit}."
        )
    vectors = kernel.reshape(size, filters).T  # (D, p*p*C)
    centred = vectors - vectors.mean(axis=0)
    _, singular, rows = np.linalg.svd(centred, full_matrices=False)
    components = rows[:count]
    largest = np.argmax(np.abs(components), axis=1)
    signs = np.sign(components[np.arange(count), largest])
    components = components * np.where(signs == 0, 1.0, signs)[:, None]
    variance = singular**2
    total = variance.sum()
    ratio = variance[:count] / total if total > 0 else np.zeros(count)
    return components.reshape(count, p1, p2, channels), ratio
