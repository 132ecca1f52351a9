"""The reference CNNs built from cvcourse.nn learn the embedded data sets (issue 3's bar)."""

import pytest

from cvcourse import nn
from cvcourse.data import DataLoader, load_shapes
from cvcourse.demo import train_digits
from cvcourse.models import lenet_digits, shapes_cnn


def test_lenet_reaches_97_percent_on_the_digits_test_split():
    _, history = train_digits(progress=False)
    assert history.val_accuracy[-1] >= 0.97, history.val_accuracy
    assert history.train_loss[-1] < history.train_loss[0] / 10


def test_shapes_cnn_reaches_95_percent_on_shapes_it_never_saw():
    x_train, y_train = load_shapes(2000, size=28, noise=0.02, seed=0)
    x_test, y_test = load_shapes(500, size=28, noise=0.02, seed=1)
    model = shapes_cnn(num_classes=5, size=28, seed=0)
    history = nn.fit(
        model,
        nn.CrossEntropyLoss(),
        nn.Adam(model, lr=3e-3),
        DataLoader(x_train, y_train, 32, seed=0),
        DataLoader(x_test, y_test, 250, shuffle=False),
        epochs=6,
        progress=False,
    )
    assert history.val_accuracy[-1] >= 0.95, history.val_accuracy


def test_reference_models_have_the_documented_sizes():
    assert sum(p.size for p in lenet_digits().params.values()) == 6058
    assert shapes_cnn(size=28).params["7.weight"].shape == (5, 16 * 7 * 7)


@pytest.mark.parametrize(
    ("build", "error"),
    [
        (lambda: lenet_digits(num_classes=1), ValueError),
        (lambda: lenet_digits(seed=-1), TypeError),
        (lambda: shapes_cnn(size=30), ValueError),
        (lambda: shapes_cnn(num_classes=True), ValueError),
    ],
    ids=["one-class", "negative-seed", "size-not-multiple-of-4", "bool-classes"],
)
def test_reference_models_reject_bad_arguments(build, error):
    with pytest.raises(error):
        build()
