"""Training, split by job (docs/training.md, "The training API"):

* ``config``: the run's settings (``TrainConfig``, flat as files record them) and their four parts;
* ``optimizer``: the optimizer part: its ``build_optimizer`` spec, and an optimizer object's mapping;
* ``recipes``: named recipes as data (network, optimizer, data, run);
* ``feeding``: the data, its validation split, and the seeded batches;
* ``task``: what the network predicts and how it is scored (``Classification``);
* ``loop``: the one step/epoch loop and the ``Callback`` base;
* ``callbacks``: progress, validation, report lines, checkpoints, the NaN guard, Ctrl-C;
* ``checkpoint``: ``RunState``, checkpoint paths, saving and reading;
* ``inference``: the one chunked ``predict``;
* ``train``: ``train`` and ``resume``, a whole run with its files;
* ``outputs``, ``divergence``, ``metrics``, ``progress``: the files a run writes, the NaN message,
  classification metrics, the progress bar.
"""
