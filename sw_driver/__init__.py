"""RecNMP host driver: place tables, compile SLS requests into NMP-Inst packets, run them.

::

    from sw_driver import Device
    dev = Device(channels=1, dimms_per_channel=1, ranks_per_dimm=2, backend="golden")
    dev.load_table("t0", table)                 # float32 (rows, D) or fused 8-bit uint8 (rows, D + 8)
    out = dev.sls("t0", indices, lengths)       # float32 (bags, D)
    outs = dev.run([("t0", idx0, len0), ("t1", idx1, len1, w1)])
    dev.report                                  # figures of the last call

``docs/driver.md`` describes the API, the address map, placement, the compiler, the hint
model, the report and the errors.
"""

from .device import Device
from .errors import DeviceMemoryError, DriverError, TableExistsError, UnknownTableError, UnsupportedConfigError
from .report import Report

__all__ = [
    "Device",
    "DeviceMemoryError",
    "DriverError",
    "Report",
    "TableExistsError",
    "UnknownTableError",
    "UnsupportedConfigError",
]
