"""The loops backend is standard library only: it imports, builds and trains with NumPy unimportable."""

from __future__ import annotations

from subprocesses import ROOT, run_without

SCRIPT = """
    try:
        import numpy
    except ImportError:
        pass
    else:
        raise SystemExit("the blocker failed: numpy imported")

    import scratchnet
    from scratchnet.builders import build_network
    from scratchnet.core.architecture import mlp
    from scratchnet.loops import SGD

    net = build_network(mlp([4, 8, 3]), backend="loops", seed=7)
    inputs = [[0.1, 0.2, 0.3, 0.4], [1.0, -1.0, 0.5, 0.0], [0.0, 0.3, -0.2, 0.9]]
    labels = [0, 2, 1]
    optimizer = SGD(lr=0.5)
    first = net.loss(net.forward(inputs), labels)
    for _ in range(20):
        loss = net.loss(net.forward(inputs), labels)
        net.backward()
        optimizer.step(net)
    last = net.loss(net.forward(inputs), labels)
    assert last < first, (first, last)
    assert net.predict(inputs) == labels, net.predict(inputs)
    assert "numpy" not in sys.modules
    print("trained without numpy", first, last)
    """


def test_loops_backend_trains_without_numpy() -> None:
    result = run_without("numpy", SCRIPT)
    assert result.returncode == 0, result.stderr
    assert "trained without numpy" in result.stdout


def test_loops_package_source_never_imports_numpy() -> None:
    for path in (ROOT / "scratchnet" / "loops").glob("*.py"):
        text = path.read_text()
        assert "import numpy" not in text and "from numpy" not in text, path
