"""The floor of the tox loop: one test that does nothing, with the lab's dependencies installed."""


def test_nothing():
    assert True
