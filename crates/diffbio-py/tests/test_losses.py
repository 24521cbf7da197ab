"""The losses for other frameworks: values against float64 references written from the
formulas, gradients against finite differences, on random inputs of several shapes."""

import numpy as np
import pytest

from diffbio_metrics.losses import batch_mixing_loss, differentiable_auroc


def mixing_reference(x, batches, k, n_batches, t):
    """diffbio's batch-mixing loss in float64, dense (docs/SPEC.md's formula)."""
    n = len(x)
    d = ((x[:, None, :] - x[None, :, :]) ** 2).sum(axis=2)
    entropy = np.empty(n)
    for i in range(n):
        others = np.delete(np.arange(n), i)
        di = d[i, others]
        kappa = np.sort(di)[k - 1]
        a = np.exp(-(di - di.min()) / t)
        a /= a.sum()
        m = 1 / (1 + np.exp(-(kappa - di - 1e-10) / t))
        w = a * m / ((a * m).sum() + 1e-8)
        p = np.bincount(batches[others], weights=w, minlength=n_batches)
        entropy[i] = -(p * np.log(p + 1e-8)).sum()
    return -entropy.mean() / (np.log(n_batches) + 1e-8)


def finite_differences(f, x, h=1e-6):
    grad = np.empty_like(x)
    for index in np.ndindex(x.shape):
        up, down = x.copy(), x.copy()
        up[index] += h
        down[index] -= h
        grad[index] = (f(up) - f(down)) / (2 * h)
    return grad


@pytest.mark.parametrize("n, dims, k, n_batches, t", [(30, 4, 5, 3, 1.0), (41, 3, 10, 2, 0.5), (25, 6, 24, 4, 2.0)])
def test_batch_mixing_matches_its_reference_and_finite_differences(n, dims, k, n_batches, t):
    rng = np.random.default_rng(n)
    x = rng.normal(size=(n, dims))
    batches = rng.integers(0, n_batches, size=n)
    value, grad = batch_mixing_loss(x, batches, k, t, n_batches)
    assert value == pytest.approx(mixing_reference(x, batches, k, n_batches, t), abs=1e-12)
    assert grad.shape == x.shape and grad.dtype == np.float64
    numeric = finite_differences(lambda y: batch_mixing_loss(y, batches, k, t, n_batches)[0], x)
    assert np.linalg.norm(grad - numeric) <= 1e-6 * np.linalg.norm(numeric)
    value32, grad32 = batch_mixing_loss(x.astype(np.float32), batches, k, t, n_batches)
    assert grad32.dtype == np.float32
    assert value32 == pytest.approx(value, abs=1e-5)
    assert np.linalg.norm(grad32 - grad) <= 1e-3 * np.linalg.norm(grad)


@pytest.mark.parametrize("n, t", [(40, 1.0), (101, 0.3)])
def test_auroc_surrogate_matches_its_reference_and_finite_differences(n, t):
    rng = np.random.default_rng(n)
    scores = rng.normal(size=n)
    labels = (rng.uniform(size=n) < 0.4).astype(int)
    labels[:2] = [0, 1]
    pos, neg = scores[labels == 1], scores[labels == 0]
    want = (1 / (1 + np.exp(-(pos[:, None] - neg[None, :]) / t))).mean()
    value, grad = differentiable_auroc(scores, labels, t)
    assert value == pytest.approx(want, abs=1e-12)
    numeric = finite_differences(lambda s: differentiable_auroc(s, labels, t)[0], scores)
    assert np.linalg.norm(grad - numeric) <= 1e-6 * np.linalg.norm(numeric)


def test_bad_input_is_a_value_error():
    """One case per refusal; a single class is no error (the surrogate is 0, as diffbio's)."""
    rng = np.random.default_rng(0)
    x, batches = rng.normal(size=(20, 3)), np.arange(20) % 2
    nan = x.copy()
    nan[4, 1] = np.nan
    for call, says in [
        (lambda: batch_mixing_loss(x, batches, n_neighbors=20), "n_neighbors` = 20"),
        (lambda: batch_mixing_loss(x, batches, n_batches=1), "n_batches` = 1"),
        (lambda: batch_mixing_loss(x, np.where(batches == 1, 2, 0), n_batches=2), "label 2"),
        (lambda: batch_mixing_loss(nan, batches), "NaN"),
        (lambda: batch_mixing_loss(x, batches, temperature=0.0), "temperature` = 0"),
        (lambda: batch_mixing_loss(x, batches.astype(float)), "integers"),
        (lambda: batch_mixing_loss(x[:, 0], batches), "2-D"),
        (lambda: batch_mixing_loss(x, batches[:-1]), "one label per row"),
        (lambda: batch_mixing_loss(np.zeros((0, 3)), np.zeros(0, dtype=int), n_batches=2), "empty"),
        (lambda: differentiable_auroc(x[:, 0], batches * 2), "0 or 1"),
        (lambda: differentiable_auroc(x[:, 0], batches, temperature=-1.0), "temperature"),
    ]:
        with pytest.raises(ValueError, match=says):
            call()
    value, grad = differentiable_auroc(x[:, 0], np.zeros(20, dtype=int))
    assert value == 0.0 and not grad.any()


def test_the_torch_wrapper_of_the_docs_trains():
    torch = pytest.importorskip("torch")
    import diffbio_metrics.losses as losses

    namespace = {}
    example = losses.__doc__.split("::", 1)[1].split("In JAX")[0]
    code = "\n".join(line[4:] for line in example.splitlines())
    exec(code.split("loss = BatchMixing.apply")[0], namespace)
    z = torch.randn(64, 8, dtype=torch.float64, requires_grad=True)
    batch_ids = torch.arange(64) % 3
    loss = namespace["BatchMixing"].apply(z, batch_ids)
    loss.backward()
    value, grad = batch_mixing_loss(z.detach().numpy(), batch_ids.numpy())
    assert loss.item() == pytest.approx(value)
    np.testing.assert_allclose(z.grad.numpy(), grad)
