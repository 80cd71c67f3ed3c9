"""Play a data logger that keeps its file open: create PATH, then append one record
every INTERVAL seconds, syncing to disk after each (as loggers do), COUNT records in
all, then close. Prints READY once the file exists with its first record.

    python logger.py PATH FORMAT COUNT INTERVAL
    FORMAT: NETCDF3_CLASSIC | NETCDF3_64BIT_OFFSET | NETCDF3_64BIT_DATA | NETCDF4 | h5netcdf
"""

import sys
import time

import numpy as np

path, fmt, count, interval = sys.argv[1], sys.argv[2], int(sys.argv[3]), float(sys.argv[4])
if fmt == "h5netcdf":
    import h5netcdf

    ds = h5netcdf.File(path, "w")
    ds.dimensions = {"time": None}
    t = ds.create_variable("time", ("time",), "f8")
    v = ds.create_variable("temp", ("time",), "f4")
else:
    import netCDF4

    ds = netCDF4.Dataset(path, "w", format=fmt)
    ds.createDimension("time", None)
    t = ds.createVariable("time", "f8", ("time",))
    v = ds.createVariable("temp", "f4", ("time",))
if fmt == "h5netcdf":
    t.attrs["units"] = "seconds since 2024-01-01 00:00:00"
    v.attrs["units"] = "degC"
else:
    t.units = "seconds since 2024-01-01 00:00:00"
    v.units = "degC"
for i in range(count):
    if fmt == "h5netcdf":
        ds.resize_dimension("time", i + 1)
    t[i] = float(i)
    v[i] = np.float32(20.0 + 0.1 * i)
    if fmt == "h5netcdf":
        ds.flush()
    else:
        ds.sync()
    if i == 0:
        print("READY", flush=True)
    time.sleep(interval)
ds.close()
