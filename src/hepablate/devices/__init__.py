"""Device data: IRE probes and generator limits, laser fibres and sources."""

from hepablate.devices.catalog import DeviceTable, load_device_table

__all__ = ["DeviceTable", "load_device_table"]
