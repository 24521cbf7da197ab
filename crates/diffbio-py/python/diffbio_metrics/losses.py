"""diffbio's fused losses for PyTorch, JAX or plain numpy: each returns ``(value, gradient)``
computed by diffbio's CPU kernels (streaming, no n x n buffer, exact k-th neighbour), so
that a framework can wrap it in a custom autograd function. The gradient has the input's
shape and dtype (float32 or float64; other inputs are computed in float32).

A PyTorch wrapper (the data go to the CPU and back)::

    import torch
    from diffbio_metrics.losses import batch_mixing_loss

    class BatchMixing(torch.autograd.Function):
        @staticmethod
        def forward(ctx, x, batches, n_neighbors=15, temperature=1.0):
            value, grad = batch_mixing_loss(x.detach().cpu().numpy(), batches.cpu().numpy(),
                                            n_neighbors, temperature)
            ctx.save_for_backward(torch.from_numpy(grad).to(x.device))
            return x.new_tensor(value)

        @staticmethod
        def backward(ctx, grad_output):
            (grad,) = ctx.saved_tensors
            return grad_output * grad, None, None, None

    loss = BatchMixing.apply(z, batch_ids)   # z: (cells, dims), requires_grad
    loss.backward()

In JAX, ``jax.pure_callback`` inside a ``jax.custom_vjp`` plays the same part.
"""

import numpy as np

from . import _native


def _floats(x, what: str) -> np.ndarray:
    """float64 stays float64; any other real array becomes float32; C-contiguous."""
    x = np.asarray(x)
    if not np.issubdtype(x.dtype, np.number) or np.issubdtype(x.dtype, np.complexfloating):
        raise ValueError(f"{what} must hold real numbers, not {x.dtype}")
    return np.ascontiguousarray(x, dtype=np.float64 if x.dtype == np.float64 else np.float32)


def _integers(values, what: str) -> np.ndarray:
    values = np.asarray(values)
    if values.ndim != 1:
        raise ValueError(f"{what} must be one label per cell (1-d), not of shape {values.shape}")
    if values.dtype == bool:
        values = values.astype(np.uint8)
    if not np.issubdtype(values.dtype, np.integer):
        raise ValueError(f"{what} must be integers, not {values.dtype}")
    if values.size and values.min() < 0:
        raise ValueError(f"{what} holds the negative label {values.min()}")
    return values


def batch_mixing_loss(x, batches, n_neighbors: int = 15, temperature: float = 1.0,
                      n_batches: int | None = None, n_jobs: int = 1) -> tuple[float, np.ndarray]:
    """Negative normalised entropy of the batches among each cell's soft ``n_neighbors``
    nearest neighbours (diffbio's ``BatchMixingLoss``; in [-1, 0], lower = better mixed) of
    the embedding ``x`` (cells x dims), and its gradient with respect to ``x``.

    ``batches`` are integer labels in ``0..n_batches`` (``n_batches`` defaults to the
    largest label + 1). Bad input (k >= n, a label out of range, NaN, temperature <= 0,
    ...) raises ``ValueError``.
    """
    batches = _integers(batches, "batches")
    if n_batches is None:
        n_batches = int(batches.max()) + 1 if batches.size else 0
    return _native.batch_mixing_loss(
        _floats(x, "x"), np.ascontiguousarray(batches, dtype=np.uint32), n_neighbors, n_batches,
        temperature, n_jobs,
    )


def differentiable_auroc(scores, labels, temperature: float = 1.0, n_jobs: int = 1) -> tuple[float, np.ndarray]:
    """diffbio's AUROC surrogate (``DifferentiableAuroc``): the mean over positive/negative
    pairs of ``sigmoid((s_pos - s_neg) / temperature)`` (higher = better; train on
    ``1 - value``), and its gradient with respect to ``scores``. ``labels`` are 0/1."""
    labels = _integers(labels, "labels")
    if labels.size and labels.max() > 1:
        raise ValueError(f"labels must be 0 or 1, found {labels.max()}")
    return _native.differentiable_auroc(
        _floats(scores, "scores"), np.ascontiguousarray(labels, dtype=np.uint8), temperature, n_jobs
    )
