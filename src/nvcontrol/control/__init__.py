"""GPU control: clock offsets, locked clocks, power, fans, persistence — as transactions.

Layout (dependencies point down):

* ``manager``      — :class:`GpuManager`, the async API the CLI (and later the agent) uses.
* ``runner``       — runs a :class:`~nvcontrol.control.transaction.Transaction` against NVML.
* ``recovery``     — repairs what a dead process left behind (transactions, fan controllers).
* ``settings``     — read and write one setting of one GPU, with read-back.
* ``monitor``      — stability observations (Xid events, lost GPUs, temperature, throttling).
* ``snapshots``    — the GPU configuration model, its TOML files and its diff.
* ``journal``      — the SQLite write-ahead journal and recorded state.
* ``transaction``, ``fancurve`` — pure state machines: values in, actions out, no I/O.
"""
