"""Play an instrument that is still writing: create a NetCDF-4 file, write part of it,
flush, print READY, keep the file open for SECONDS, then finish and close it.

    python hold_open.py PATH SECONDS
"""

import sys
import time

import netCDF4
import numpy as np

path, seconds = sys.argv[1], float(sys.argv[2])
ds = netCDF4.Dataset(path, "w", format="NETCDF4")
ds.createDimension("time", None)
t = ds.createVariable("time", "f8", ("time",))
t.units = "seconds since 2024-01-01 00:00:00"
v = ds.createVariable("ch4", "f4", ("time",))
t[0:10] = np.arange(10.0)
v[0:10] = np.full(10, 1.9, dtype="f4")
ds.sync()
print("READY", flush=True)
time.sleep(seconds)
t[10:20] = np.arange(10.0, 20.0)
v[10:20] = np.full(10, 1.95, dtype="f4")
ds.close()
