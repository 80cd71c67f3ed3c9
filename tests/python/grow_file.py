"""Add records to a NetCDF file the way a logger that reopens its file does: create
PATH if it does not exist (in FORMAT), append COUNT records after those it holds,
close. With --change I, rewrite record I's value instead (a file whose ingested
records changed).

    python grow_file.py PATH FORMAT COUNT [--change I]
    FORMAT: NETCDF3_CLASSIC | NETCDF3_64BIT_OFFSET | NETCDF3_64BIT_DATA | NETCDF4 | h5netcdf
"""

import argparse
import os

import numpy as np

a = argparse.ArgumentParser()
a.add_argument("path")
a.add_argument("format")
a.add_argument("count", type=int)
a.add_argument("--change", type=int)
args = a.parse_args()
new = not os.path.exists(args.path)

if args.format == "h5netcdf":
    import h5netcdf

    ds = h5netcdf.File(args.path, "w" if new else "a")
    if new:
        ds.dimensions = {"time": None}
        t = ds.create_variable("time", ("time",), "f8")
        t.attrs["units"] = "seconds since 2024-01-01 00:00:00"
        ds.create_variable("temp", ("time",), "f4")
        # a static variable, checked against the repository on every append
        ds.dimensions["level"] = 3
        ds.create_variable("level", ("level",), "i4")[:] = [10, 20, 30]
    n = ds.dimensions["time"].size

    def put(i, value):
        if i >= ds.dimensions["time"].size:
            ds.resize_dimension("time", i + 1)
        ds["time"][i] = float(i)
        ds["temp"][i] = value
else:
    import netCDF4

    ds = netCDF4.Dataset(args.path, "w" if new else "a", format=args.format)
    if new:
        ds.createDimension("time", None)
        t = ds.createVariable("time", "f8", ("time",))
        t.units = "seconds since 2024-01-01 00:00:00"
        ds.createVariable("temp", "f4", ("time",))
        ds.createDimension("level", 3)
        ds.createVariable("level", "i4", ("level",))[:] = [10, 20, 30]
    n = len(ds.dimensions["time"])

    def put(i, value):
        ds["time"][i] = float(i)
        ds["temp"][i] = value

if args.change is not None:
    put(args.change, np.float32(-1.0))
else:
    for i in range(n, n + args.count):
        put(i, np.float32(20.0 + 0.1 * i))
ds.close()
